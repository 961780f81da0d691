"""One parse, many questions: a module with its libcst metadata and the look-ups analysis needs."""
from __future__ import annotations

from collections.abc import Iterator

import libcst as cst
from libcst.metadata import (
    Assignment,
    GlobalScope,
    MetadataWrapper,
    ParentNodeProvider,
    PositionProvider,
    QualifiedNameProvider,
    Scope,
    ScopeProvider,
)

from .diagnostics import Span


class CodeIndex:
    def __init__(self, module: cst.Module) -> None:
        self.wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
        self.module = self.wrapper.module
        self._parents = self.wrapper.resolve(ParentNodeProvider)
        self._positions = self.wrapper.resolve(PositionProvider)
        self._scopes = self.wrapper.resolve(ScopeProvider)
        self._qualified = self.wrapper.resolve(QualifiedNameProvider)

    # -- tree navigation -------------------------------------------------------------
    def parent(self, node: cst.CSTNode) -> cst.CSTNode | None:
        return self._parents.get(node)

    def ancestors(self, node: cst.CSTNode) -> Iterator[cst.CSTNode]:
        parent = self.parent(node)
        while parent is not None:
            yield parent
            parent = self.parent(parent)

    def is_inside(self, node: cst.CSTNode, containers: set[int]) -> bool:
        """Whether node is one of the containers (by identity) or below one."""
        if id(node) in containers:
            return True
        return any(id(ancestor) in containers for ancestor in self.ancestors(node))

    def statement_of(self, node: cst.CSTNode) -> cst.BaseStatement:
        """The statement (simple line or compound) that holds node."""
        current = node
        while not isinstance(current, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
            current = self.parent(current)
        return current

    def enclosing_function(self, node: cst.CSTNode) -> cst.FunctionDef | None:
        for ancestor in self.ancestors(node):
            if isinstance(ancestor, cst.FunctionDef):
                return ancestor
        return None

    def body_of(self, statement: cst.BaseStatement) -> list[cst.BaseStatement] | None:
        """The statement list that directly holds statement (a block body or the module)."""
        parent = self.parent(statement)
        if isinstance(parent, (cst.IndentedBlock, cst.Module)):
            return list(parent.body)
        return None

    def owner_of_block(self, statement: cst.BaseStatement) -> cst.CSTNode | None:
        """The compound statement (for, def, if, ...) or module whose block holds statement."""
        parent = self.parent(statement)
        if isinstance(parent, cst.Module):
            return parent
        if isinstance(parent, cst.IndentedBlock):
            return self.parent(parent)
        return None

    # -- metadata --------------------------------------------------------------------
    def span(self, node: cst.CSTNode) -> Span:
        position = self._positions[node]
        return Span(position.start.line, position.start.column, position.end.line, position.end.column)

    def scope(self, node: cst.CSTNode) -> Scope | None:
        return self._scopes.get(node)

    def qualified_names(self, node: cst.CSTNode) -> set[str]:
        value = self._qualified.get(node)
        if value is None:
            return set()
        names = value() if callable(value) else value
        return {qualified.name for qualified in names}

    def called_name(self, call: cst.Call) -> set[str]:
        return self.qualified_names(call.func) or self.qualified_names(call)

    def assignments(self, name: cst.Name) -> list[Assignment]:
        """The bindings a Name may refer to, in its own scope."""
        scope = self.scope(name)
        if scope is None:
            return []
        return [a for a in scope[name.value] if isinstance(a, Assignment)]

    def is_global(self, assignment: Assignment) -> bool:
        return isinstance(assignment.scope, GlobalScope)

    def assigned_value(self, assignment: Assignment) -> cst.BaseExpression | None:
        """The right-hand side of `name = value` for a plain single-target assignment."""
        node = assignment.node
        parent = self.parent(node)
        if isinstance(parent, cst.AssignTarget):
            assign = self.parent(parent)
            if isinstance(assign, cst.Assign) and len(assign.targets) == 1:
                return assign.value
        if isinstance(parent, cst.AnnAssign):
            return parent.value
        return None

    def assignment_statement(self, assignment: Assignment) -> cst.BaseStatement:
        return self.statement_of(assignment.node)
