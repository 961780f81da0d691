"""One parse, many questions: a module with its libcst metadata and the look-ups analysis needs."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterator, Mapping
from collections.abc import Set as AbstractSet
from typing import TypeVar, cast

import libcst as cst
import libcst.matchers as m
from libcst.metadata import (
    Assignment,
    CodeRange,
    GlobalScope,
    MetadataWrapper,
    PositionProvider,
    Scope,
    ScopeProvider,
)

from .diagnostics import Span

N = TypeVar("N", bound=cst.CSTNode)


class CodeIndex:
    def __init__(self, module: cst.Module) -> None:
        self.wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
        self.module = self.wrapper.module
        self._parents = parent_map(self.module)  # what ParentNodeProvider answers, in its order, 5x as fast
        self._scopes = self.wrapper.resolve(ScopeProvider)
        # positions are only needed to report: computed on first use,
        self._positions: Mapping[cst.CSTNode, CodeRange] | None = None
        # for the top-level statement they are in
        self._statement_positions: dict[int, Mapping[cst.CSTNode, CodeRange]] = {}
        self._top_lines: dict[int, range] | None = None  # top-level statement -> its lines
        self._children: dict[int, dict[int, int]] = {}
        self._order: dict[int, tuple[int, ...]] = {}  # node -> order(node): the tree does not change
        self._by_type: dict[type[cst.CSTNode], list[cst.CSTNode]] = {}
        # (matcher's structure, type) -> findall's answer
        self._found: dict[tuple[object, ...], list[cst.CSTNode]] = {}
        self._qualified: dict[int, set[str]] = {}  # node -> its qualified names

    # -- tree navigation -------------------------------------------------------------
    def parent(self, node: cst.CSTNode) -> cst.CSTNode | None:
        return self._parents.get(node)

    def ancestors(self, node: cst.CSTNode) -> Iterator[cst.CSTNode]:
        parent = self.parent(node)
        while parent is not None:
            yield parent
            parent = self.parent(parent)

    def around(self, ids: set[int]) -> set[int]:
        """The ids of the nodes among `ids` (by identity) that are in the tree, and of all their ancestors."""
        found = {id(self.module)} & ids
        for node in self._parents:
            if id(node) in ids:
                found.add(id(node))
                found.update(map(id, self.ancestors(node)))
        return found

    def is_inside(self, node: cst.CSTNode, containers: AbstractSet[int]) -> bool:
        """Whether node is one of the containers (by identity) or below one."""
        if id(node) in containers:
            return True
        return any(id(ancestor) in containers for ancestor in self.ancestors(node))

    def statement_of(self, node: cst.CSTNode) -> cst.BaseStatement:
        """The statement (simple line or compound) that holds node."""
        current: cst.CSTNode | None = node
        while not isinstance(current, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
            if current is None:  # the module, its header or footer: no statement holds them
                raise ValueError(f"no statement holds {type(node).__name__} {node!r:.40}")
            current = self.parent(current)
        return current

    def top_level(self, node: cst.CSTNode) -> cst.CSTNode:
        """The statement of the module's body that holds node (the module for itself, its header and
        footer)."""
        top = node
        while (parent := self.parent(top)) is not None and parent is not self.module:
            top = parent
        return top if parent is not None else self.module

    def enclosing_function(self, node: cst.CSTNode) -> cst.FunctionDef | None:
        for ancestor in self.ancestors(node):
            if isinstance(ancestor, cst.FunctionDef):
                return ancestor
        return None

    def owner_of_block(self, statement: cst.BaseStatement) -> cst.CSTNode | None:
        """The compound statement (for, def, if, ...) or module whose block holds statement."""
        parent = self.parent(statement)
        if isinstance(parent, cst.Module):
            return parent
        if isinstance(parent, cst.IndentedBlock):
            return self.parent(parent)
        return None

    def nodes(self, kind: type[N]) -> list[N]:
        """Every node of a type (in no particular order)."""
        if kind not in self._by_type:
            self._by_type[kind] = [n for n in self._parents if isinstance(n, kind)]
        return cast("list[N]", self._by_type[kind])  # (nodes of that type only)

    def findall(self, matcher: m.BaseMatcherNode, kind: type[N]) -> list[N]:
        """The nodes of a type that match, in source order. The tree does not change: a search
        made again (once per loop, say) with an equal matcher answers from the first one."""
        key = matcher_key(matcher)
        if key is None:
            return sorted((node for node in self.nodes(kind) if m.matches(node, matcher)), key=self.order)
        if (key, kind) not in self._found:
            self._found[key, kind] = sorted(
                (node for node in self.nodes(kind) if m.matches(node, matcher)), key=self.order
            )
        return cast("list[N]", list(self._found[key, kind]))

    def order(self, node: cst.CSTNode) -> tuple[int, ...]:
        """The node's path of child positions from the module: compares source order without
        computing line numbers."""
        known = self._order.get(id(node))
        if known is not None:
            return known
        path: list[int] = []
        current = node
        while (parent := self.parent(current)) is not None:
            if id(parent) not in self._children:
                self._children[id(parent)] = {id(child): i for i, child in enumerate(children(parent))}
            path.append(self._children[id(parent)].get(id(current), -1))
            current = parent
        self._order[id(node)] = found = tuple(reversed(path))
        return found

    def is_before(self, node: cst.CSTNode, statement: cst.CSTNode) -> bool:
        return self.order(node) < self.order(statement) and not self.is_inside(node, {id(statement)})

    def is_after(self, node: cst.CSTNode, statement: cst.CSTNode) -> bool:
        return self.order(node) > self.order(statement) and not self.is_inside(node, {id(statement)})

    def binding_seen_after(
        self, read: cst.Name, statement: cst.CSTNode, moved: AbstractSet[int] = frozenset()
    ) -> str:
        """Which binding a read after `statement` (a loop) sees, by position: "loop" when nothing
        rebinds its variable in between, "rebound" when a binding in between always runs before
        the read, "maybe" when one may or may not (under an `if`, in a loop, an augmented one).
        Bindings in `moved` (code that moved into the module with the loop) do not count."""
        between = [
            a.node
            for a in self.assignments(read)
            if a.node is not read
            and not self.is_inside(a.node, moved)
            and self.is_after(a.node, statement)
            and self.is_before(a.node, read)
        ]
        if not between:
            return "loop"
        return "rebound" if any(self.always_runs_before(node, read) for node in between) else "maybe"

    def always_runs_before(self, binding: cst.CSTNode, read: cst.CSTNode) -> bool:
        """Whether a binding before a read always runs first: nothing but blocks and `with`s lie
        between it and the innermost node holding both (and it is no `x += ...`)."""
        if isinstance(self.parent(binding), cst.AugAssign):
            return False
        around_read = set(map(id, self.ancestors(read)))
        loop = next((a for a in self.ancestors(binding) if isinstance(a, (cst.For, cst.CompFor))), None)
        if (
            isinstance(loop, cst.For)
            and self.is_inside(binding, {id(loop.target)})
            and id(loop.body) in around_read
        ):
            return True  # `for epoch in ...:` binds epoch before every pass of its body
        for ancestor in self.ancestors(binding):
            if id(ancestor) in around_read:
                return True
            if not isinstance(
                ancestor,
                (
                    cst.IndentedBlock,
                    cst.With,
                    cst.SimpleStatementLine,
                    cst.AssignTarget,
                    cst.Assign,
                    cst.AnnAssign,
                    cst.AsName,
                    cst.WithItem,
                    cst.Tuple,
                    cst.List,
                    cst.Element,
                    cst.StarredElement,
                ),
            ):
                return False
        return False

    # -- metadata --------------------------------------------------------------------
    def span(self, node: cst.CSTNode) -> Span:
        position, lines = self.position(node)
        return Span(
            position.start.line + lines, position.start.column, position.end.line + lines, position.end.column
        )

    def position(self, node: cst.CSTNode) -> tuple[CodeRange, int]:
        """(libcst's CodeRange, lines to add): computed for the top-level statement that holds the node
        alone, at column 0 as in the module, its lines counted from the lines above it."""
        top = self.top_level(node)
        if self._positions is not None or not isinstance(top, cst.BaseStatement):
            # the module itself, its header or footer
            if self._positions is None:
                self._positions = self.wrapper.resolve(PositionProvider)
            return self._positions[node], 0
        if id(top) not in self._statement_positions:
            body = self.module.body
            last = top is body[-1]
            alone = self.module.with_changes(
                body=[top],
                header=[],
                footer=self.module.footer if last else [],
                has_trailing_newline=self.module.has_trailing_newline if last else True,
            )
            self._statement_positions[id(top)] = MetadataWrapper(alone, unsafe_skip_copy=True).resolve(
                PositionProvider
            )
        return self._statement_positions[id(top)][node], self.lines_before(top)

    def lines_before(self, statement: cst.BaseStatement) -> int:
        """How many lines lie above a statement of the module's body."""
        return self.lines_of(statement).start - 1

    def lines_of(self, statement: cst.BaseStatement) -> range:
        """The lines (from 1) of a statement of the module's body with its leading blank and comment
        lines (counted once for all of them)."""
        if self._top_lines is None:
            newline, module = self.module.default_newline, self.module
            lines = (
                module.with_changes(body=[], footer=[], has_trailing_newline=True).code.count(newline)
                if module.header
                else 0
            )
            self._top_lines = {}
            for top in module.body:
                count = module.code_for_node(top).count(newline)
                self._top_lines[id(top)] = range(lines + 1, lines + 1 + count)
                lines += count
        return self._top_lines[id(statement)]

    def scope(self, node: cst.CSTNode) -> Scope | None:
        return self._scopes.get(node)

    def qualified_names(self, node: cst.CSTNode) -> set[str]:
        """`torch.optim.SGD` for `optim.SGD` after `import torch.optim as optim`, and so on."""
        names = self._qualified.get(id(node))
        if names is None:
            scope = self._scopes.get(node)
            names = (
                set()
                if scope is None
                else {qualified.name for qualified in scope.get_qualified_names_for(node)}
            )
            if scope is not None:  # (a node of the tree, alive as long as the index: its id stays its own)
                self._qualified[id(node)] = names
        return set(names)

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
        if isinstance(parent, cst.Element) and isinstance(tuple_ := self.parent(parent), cst.Tuple):
            # `best, state = float("inf"), None`: the element at the same position
            target = self.parent(tuple_)
            assign = self.parent(target) if isinstance(target, cst.AssignTarget) else None
            if (
                isinstance(assign, cst.Assign)
                and len(assign.targets) == 1
                and isinstance(assign.value, cst.Tuple)
                and len(assign.value.elements) == len(tuple_.elements)
            ):
                return assign.value.elements[tuple_.elements.index(parent)].value
        return None

    def assignment_statement(self, assignment: Assignment) -> cst.BaseStatement:
        return self.statement_of(assignment.node)


def matcher_key(matcher: object) -> tuple[object, ...] | None:
    """A hashable value equal for matchers that match the same nodes: their types and fields, all
    the way down. None for a matcher with a predicate or anything else this cannot compare."""
    if matcher is None or isinstance(matcher, (str, int, float, bool, enum.Enum)):
        return (type(matcher), matcher)
    if isinstance(matcher, (list, tuple)):
        keys = tuple(matcher_key(item) for item in matcher)
        return None if None in keys else (type(matcher), keys)
    if isinstance(matcher, (m.OneOf, m.AllOf)):
        options = matcher_key(tuple(matcher.options))
        return None if options is None else (type(matcher), options)
    if isinstance(matcher, m.BaseMatcherNode) and dataclasses.is_dataclass(matcher):
        keys = tuple(matcher_key(getattr(matcher, f.name)) for f in dataclasses.fields(matcher))
        return None if None in keys else (type(matcher), keys)
    return None


class _Fields(cst.CSTVisitor):
    """Records the fields a node visits, in order, without going into them."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        return False

    def on_visit_attribute(self, node: cst.CSTNode, attribute: str) -> None:
        self.names.append(attribute)


# (type, its fields visited only when set that are set) -> fields
_VISITED: dict[tuple[type[cst.CSTNode], tuple[str, ...]], tuple[str, ...]] = {}
_SOMETIMES: dict[
    type[cst.CSTNode], tuple[str, ...]
] = {}  # type -> fields its first node did not visit (f-string format_spec)


def _holds_nodes(value: object) -> bool:
    return isinstance(value, cst.CSTNode) or (
        isinstance(value, (tuple, list)) and any(isinstance(item, cst.CSTNode) for item in value)
    )


def child_fields(node: cst.CSTNode) -> tuple[str, ...]:
    """The fields of a node that hold its children, in the order libcst visits them (learnt once
    per type, and again per combination of the fields some types visit only when set)."""
    kind = type(node)
    sometimes = _SOMETIMES.get(kind)
    key = None if sometimes is None else (kind, tuple(n for n in sometimes if _holds_nodes(getattr(node, n))))
    names = None if key is None else _VISITED.get(key)
    if names is None:
        recorder = _Fields()
        node._visit_and_replace_children(recorder)
        names = tuple(dict.fromkeys(recorder.names))
        if sometimes is None:
            sometimes = _SOMETIMES[kind] = tuple(
                f.name for f in dataclasses.fields(node) if f.name not in names
            )
        _VISITED[kind, tuple(n for n in sometimes if _holds_nodes(getattr(node, n)))] = names
    return names


def children(node: cst.CSTNode) -> list[cst.CSTNode]:
    """node.children (in the same order), read off the fields instead of rebuilding the node."""
    found: list[cst.CSTNode] = []
    for name in child_fields(node):
        value = getattr(node, name)
        if isinstance(value, cst.CSTNode):
            found.append(value)
        elif isinstance(value, (tuple, list)):
            found.extend(item for item in value if isinstance(item, cst.CSTNode))
    return found


def parent_map(module: cst.Module) -> dict[cst.CSTNode, cst.CSTNode]:
    """Each node's parent, keyed in ParentNodeProvider's order: a node's children are entered when
    the visit leaves it (CodeIndex.nodes lists them in that order)."""
    parents: dict[cst.CSTNode, cst.CSTNode] = {}
    stack: list[tuple[cst.CSTNode, list[cst.CSTNode] | None]] = [(module, None)]
    while stack:
        node, kids = stack.pop()
        if kids is not None:
            for child in kids:
                parents[child] = node
            continue
        kids = children(node)
        stack.append((node, kids))
        stack.extend((child, None) for child in reversed(kids))
    return parents
