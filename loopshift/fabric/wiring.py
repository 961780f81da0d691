"""Where `fabric` is built and how it reaches the code that uses it.

Fabric is built once, where the script builds its DataLoaders (else its optimizer), right after
the statements its arguments come from (the script's `device`, `use_amp`, ...). Code elsewhere
gets it the way a person would pass it: a module-level `fabric` is a global every function sees; a
`fabric` built in `main()` is passed as the first argument of the functions that need it, and to
the constructor of a class whose methods need it (kept as `self.fabric`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import cast

import libcst as cst
import libcst.matchers as m

from ..index import CodeIndex
from .analysis import FabricAnalysis
from .facts import Scope
from .matching import MAIN_GUARD


@dataclass
class Placement:
    """Where `fabric = L.Fabric(...)` and `fabric.launch()` go."""

    block: list[cst.BaseStatement]  # the statements of the block that holds them
    position: int  # they go before block[position] (at the end when position == len(block))
    arguments: dict[str, cst.BaseExpression] = field(default_factory=dict)  # accelerator=, devices=, ...
    follows: bool = False  # right after the statements its arguments come from (else before what needs it)

    def precedes(self, index: CodeIndex, statement: cst.BaseStatement) -> bool:
        """Whether a statement of the same scope runs before Fabric is built."""
        return self.position == len(self.block) or index.order(statement) < index.order(
            self.block[self.position]
        )


class Wiring:
    def __init__(self, analysis: FabricAnalysis, home: Scope) -> None:
        self.analysis, self.index = analysis, analysis.index
        self.home = home
        # the class whose instance keeps fabric as `self.fabric`: only a home that has a `self`
        self.home_class = (
            analysis.resolver.method_class(home) if home is not None and self.takes_self(home) else None
        )
        self.memo: dict[int, bool] = {}
        self.functions: set[int] = set()  # functions that take `fabric` as their first parameter
        self.classes: dict[int, cst.FunctionDef] = {}  # class -> its __init__, which takes `fabric`
        self.call_sites: set[int] = set()  # calls that pass `fabric` first

    # -- who can reach fabric ---------------------------------------------------------------
    def reaches(self, node: cst.CSTNode) -> bool:
        return self.reaches_scope(self.analysis.scope_of(node))

    def reaches_scope(self, function: Scope) -> bool:
        if self.home is None or function is self.home:
            return True  # a module-level fabric is a global every function sees
        if function is None:
            return False
        if id(function) not in self.memo:
            self.memo[id(function)] = True  # a recursive call reaches it once its caller does
            self.memo[id(function)] = self.thread(function)
        return self.memo[id(function)]

    def takes_self(self, function: cst.FunctionDef) -> bool:
        """A method called on an instance, with its `self` parameter."""
        decorators = {self.index.module.code_for_node(d.decorator) for d in function.decorators}
        return not decorators & {"staticmethod", "classmethod"} and self.self_name(function) is not None

    def thread(self, function: cst.FunctionDef) -> bool:
        owner = self.analysis.resolver.method_class(function)
        if owner is not None:
            if not self.takes_self(function):
                return False
            return owner is self.home_class or self.thread_class(owner)
        calls = self.analysis.resolver.all_calls(function)
        if not calls or self.index.enclosing_function(function) is not None:
            return False
        if not all(self.reaches(call) for call in calls):
            return False
        self.functions.add(id(function))
        self.call_sites |= {id(call) for call in calls}
        return True

    def thread_class(self, owner: cst.ClassDef) -> bool:
        if id(owner) in self.classes:
            return True
        init = next(
            (s for s in owner.body.body if isinstance(s, cst.FunctionDef) and s.name.value == "__init__"),
            None,
        )
        calls = self.analysis.resolver.all_calls(owner)
        if init is None or not calls or not self.self_name(init):
            return False
        self.classes[id(owner)] = init
        if not all(self.reaches(call) for call in calls):
            del self.classes[id(owner)]
            return False
        self.call_sites |= {id(call) for call in calls}
        return True

    def self_name(self, function: cst.FunctionDef) -> str | None:
        params = list(function.params.posonly_params) + list(function.params.params)
        return params[0].name.value if params else None

    def reference(self, node: cst.CSTNode) -> cst.BaseExpression:
        """How the code at node names fabric: `fabric`, or `self.fabric` in the methods of a class
        that keeps it."""
        function = self.analysis.scope_of(node)
        owner = self.analysis.resolver.method_class(function) if function is not None else None
        if function is self.home and self.home_class is None:
            return cst.Name("fabric")  # built in a function, or a staticmethod: a local
        if (
            function is not None
            and owner is not None
            and (owner is self.home_class or id(owner) in self.classes)
        ):
            # a method of a class that keeps fabric takes self first (thread and home_class checked it)
            return cst.Attribute(cst.Name(cast(str, self.self_name(function))), cst.Name("fabric"))
        return cst.Name("fabric")

    # -- where fabric is built -------------------------------------------------------------
    def placement(
        self, anchors: list[cst.CSTNode], uses: list[cst.CSTNode], arguments: dict[str, cst.BaseExpression]
    ) -> Placement:
        """anchors: statements the setups follow; uses: nodes that need fabric. Both in the home
        scope. Arguments whose names are bound too late fall back to Fabric's defaults."""
        index = self.index
        first = min(anchors + uses, key=index.order)
        statement = self.top_level(index.statement_of(first))
        # the block holding a statement: an indented block, or the module
        block = list(cast(cst.IndentedBlock | cst.Module, index.parent(statement)).body)
        top = {id(s): i for i, s in enumerate(block)}

        def position_of(node: cst.CSTNode) -> int | None:
            """The index of the block statement holding node; -1 before the block; None after it."""
            for candidate in [node, *index.ancestors(node)]:
                if id(candidate) in top:
                    return top[id(candidate)]
            return -1 if index.order(node) < index.order(block[0]) else None

        first_use = min((p for u in uses if (p := position_of(u)) is not None), default=len(block))
        while True:
            bound = [self.bound_at(expression, position_of) for expression in arguments.values()]
            if all(b is not None and b < first_use for b in bound):
                break
            late = max(range(len(bound)), key=lambda i: len(block) if (b := bound[i]) is None else b)
            del arguments[list(arguments)[late]]
        last = max(cast(list[int], bound), default=-1)  # each one bound: the loop ends only then
        if last >= 0:
            return Placement(block, last + 1, arguments, follows=True)
        # first is in the block: top_level found the block statement holding it
        return Placement(block, cast(int, position_of(first)), arguments)

    def top_level(self, statement: cst.BaseStatement) -> cst.BaseStatement:
        """The statement of the home scope's own block that holds statement: fabric is built once,
        on every path, so never in a loop or in one branch of an `if` (or a `with`, a `try`) of
        its function. At module level, the `if __name__ == "__main__":` block is its own block."""
        for ancestor in ancestors_to(self.index, statement, self.home):
            if m.matches(ancestor, MAIN_GUARD):
                break
            if isinstance(ancestor, cst.BaseCompoundStatement):
                statement = ancestor
        return statement

    def bound_at(
        self, expression: cst.BaseExpression, position_of: Callable[[cst.CSTNode], int | None]
    ) -> int | None:
        """The position of the last block statement binding a name the expression reads (-1: all
        bound before the block), None when one is bound after it."""
        last = -1
        for found in m.findall(expression, m.Name()):
            name = cast(cst.Name, found)  # m.Name() matched it
            parent = self.index.parent(name)
            if isinstance(parent, cst.Attribute) and parent.attr is name:
                continue
            for assignment in self.index.assignments(name):
                if assignment.scope is self.index.scope(self.index.module) and self.home is not None:
                    continue  # a global: bound when the module was imported
                position = position_of(assignment.node)
                if position is None:
                    return None
                last = max(last, position)
        for found in m.findall(expression, m.Attribute(value=m.Name())):  # `args.cuda = ...`
            attribute = cast(cst.Attribute, found)  # the matcher checked it, and that its value is a Name
            owner = cast(cst.Name, attribute.value)
            target = m.AssignTarget(
                target=m.Attribute(value=m.Name(owner.value), attr=m.Name(attribute.attr.value))
            )
            for statement in self.index.findall(
                m.SimpleStatementLine(body=[m.Assign(targets=[target])]), cst.SimpleStatementLine
            ):
                if self.analysis.scope_of(statement) is self.home:
                    position = position_of(statement)
                    if position is None:
                        return None
                    last = max(last, position)
        return last


def ancestors_to(index: CodeIndex, node: cst.CSTNode, stop: cst.CSTNode | None) -> Iterator[cst.CSTNode]:
    for ancestor in index.ancestors(node):
        if ancestor is stop or isinstance(ancestor, cst.Module):
            return
        yield ancestor
