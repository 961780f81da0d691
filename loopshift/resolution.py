"""What a name refers to: its bindings, followed through a function's parameters to the arguments of
its one call, through `x, y = build()` to what the function returns, and to the optimizer or
scheduler definition it names. One copy, read by the analysis, the generation and the Fabric
target (each analysis holds one `Resolver` for its module)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar, cast

import libcst as cst
import libcst.matchers as m
from libcst.metadata import Assignment

from .index import CodeIndex
from .util import is_variable, self_attribute_name


class Definition(Protocol):
    """An optimizer's or scheduler's definition (training.OptimizerDef / SchedulerDef)."""

    @property
    def name(self) -> str: ...
    @property
    def statement(self) -> cst.SimpleStatementLine: ...
    @property
    def target(self) -> cst.BaseExpression | None: ...
    @property
    def parameter(self) -> bool: ...


D = TypeVar("D", bound=Definition)


class Resolver:
    def __init__(self, index: CodeIndex) -> None:
        self.index = index
        # function -> the call whose arguments its parameters are (an evaluation function moved into
        # the module keeps reading what its one call passed; the analysis says which)
        self.bound_calls: dict[int, cst.Call] = {}
        self._self_calls: dict[int, dict[str, list[cst.Call]]] = {}  # class -> `self.x(...)` calls
        # (name, depth) -> its origins: a read is resolved again and again (the device of every move,
        # the model of every optimizer), and a name bound in many places costs a walk over them each time
        self._origins: dict[tuple[int, int], list[Assignment]] = {}

    def bind(self, function: cst.FunctionDef, call: cst.Call) -> None:
        """From now on, the function's parameters are this call's arguments (see bound_calls)."""
        self.bound_calls[id(function)] = call
        self._origins.clear()

    def method_class(self, function: cst.FunctionDef) -> cst.ClassDef | None:
        """The class a function is a method of."""
        block = self.index.parent(function)
        owner = self.index.parent(block) if isinstance(block, cst.IndentedBlock) else None
        return owner if isinstance(owner, cst.ClassDef) else None

    def enclosing_class(self, node: cst.CSTNode) -> cst.ClassDef | None:
        return next((a for a in self.index.ancestors(node) if isinstance(a, cst.ClassDef)), None)

    def self_calls(self, owner: cst.ClassDef) -> dict[str, list[cst.Call]]:
        """`self.name(...)` calls inside a class, by name, in source order: found once per class
        (a test class of thousands of lines made one search per method call slow)."""
        if id(owner) not in self._self_calls:
            found: dict[str, list[cst.Call]] = {}
            calls = m.findall(owner, m.Call(func=m.Attribute(value=m.Name("self"))))  # (the class's own code)
            for call in sorted(cast(list[cst.Call], calls), key=self.index.order):  # (m.Call() matched each)
                found.setdefault(cast(cst.Attribute, call.func).attr.value, []).append(call)
            self._self_calls[id(owner)] = found
        return self._self_calls[id(owner)]

    def calls_of(self, function: cst.FunctionDef) -> list[cst.Call]:
        """Where a function is called: by name, or as `self.method(...)` inside its class."""
        owner = self.method_class(function)
        if owner is not None:
            return self.self_calls(owner).get(function.name.value, [])
        scope = self.index.scope(function)
        if scope is None:
            return []
        calls = []
        for assignment in scope.assignments[function.name.value]:
            if not isinstance(assignment, Assignment) or assignment.node is not function:
                continue
            for access in assignment.references:
                parent = self.index.parent(access.node)
                if isinstance(parent, cst.Call) and parent.func is access.node:
                    calls.append(parent)
        return calls

    def argument_for(self, param: cst.Param, call: cst.Call) -> cst.BaseExpression | None:
        function = self.index.enclosing_function(param)
        if function is None:
            return None
        params = list(function.params.posonly_params) + list(function.params.params)
        position = next((i for i, p in enumerate(params) if p is param), None)
        if position is None:  # a lambda's parameter, or a keyword-only one
            return None
        if isinstance(call.func, cst.Attribute) and self.method_class(function) is not None:
            if position == 0:
                return call.func.value  # self.method(...): `self` is the receiver
            position -= 1  # self.method(x): x binds the parameter after self
        positional = [a for a in call.args if a.keyword is None and not a.star]
        for arg in call.args:
            if arg.keyword is not None and arg.keyword.value == param.name.value:
                return arg.value
        if position < len(positional):
            return positional[position].value
        return param.default

    def origins(self, name: cst.BaseExpression | None, depth: int = 0) -> list[Assignment]:
        """The assignments a name may refer to, following a function parameter to the argument
        of the function's single call site."""
        if not isinstance(name, cst.Name):
            return []
        if self.index.scope(name) is None:  # not a node of the module: no binding of it either
            return []
        if (id(name), depth) not in self._origins:  # (a node of the module: its id stays its own)
            self._origins[id(name), depth] = self.followed(name, depth)
        return list(self._origins[id(name), depth])

    def followed(self, name: cst.Name, depth: int) -> list[Assignment]:
        assignments = self.reaching(name, self.index.assignments(name))
        if len(assignments) != 1 or not isinstance(assignments[0].node, cst.Param) or depth > 8:
            return assignments
        function = self.index.enclosing_function(assignments[0].node)
        calls = (
            [self.bound_calls[id(function)]]
            if id(function) in self.bound_calls
            else self.calls_of(function)
            if function
            else []
        )
        argument = self.argument_for(assignments[0].node, calls[0]) if len(calls) == 1 else None
        if not isinstance(argument, cst.Name):
            return assignments  # called from several places (or with an expression): the parameter itself
        return self.origins(argument, depth + 1)

    def reaching(self, read: cst.Name, assignments: list[Assignment]) -> list[Assignment]:
        """The bindings of a name that can reach this read: the last one before it that always runs
        first, and those after that one (`optimizer = SGD(...)` built once for a demo and again
        right before the loop: the loop's calls see the second)."""
        if len(assignments) < 2:
            return assignments
        index = self.index
        before = [a for a in assignments if index.is_before(a.node, read)]
        loops = {id(n) for n in index.ancestors(read) if isinstance(n, (cst.For, cst.While))}
        if any(a not in before and index.is_inside(a.node, loops) for a in assignments):
            return assignments  # rebound later in a loop around the read: an earlier pass's value reaches it
        dominating = [a for a in before if index.always_runs_before(a.node, read)]
        if not dominating:
            return assignments
        last = max(dominating, key=lambda a: index.order(a.node))
        return [a for a in before if a is last or index.order(a.node) > index.order(last.node)]

    def resolve(self, name: cst.BaseExpression | None) -> Assignment | None:
        """The one assignment a name finally refers to, if there is exactly one."""
        origins = self.origins(name)
        return origins[0] if len(origins) == 1 else None

    def definition_of(self, name: cst.BaseExpression | None, definitions: Sequence[D]) -> D | None:
        """The definition (optimizer, scheduler) a name or a `self.attribute` refers to."""
        if name is None:
            return None
        attribute = self_attribute_name(name)
        if attribute is not None:
            owner = self.enclosing_class(name)
            found = next(
                (
                    d
                    for d in definitions
                    if d.target is not None
                    and self_attribute_name(d.target) == attribute
                    and owner is not None
                    and self.enclosing_class(d.statement) is owner
                ),
                None,
            )
            return found or self.definition_passed_in(owner, attribute, definitions)
        if not isinstance(name, cst.Name):
            return None
        return self.definition_of_name(name, definitions)

    def definition_passed_in(
        self, owner: cst.ClassDef | None, attribute: str, definitions: Sequence[D]
    ) -> D | None:
        """`self.optimizer` of a class whose `__init__` keeps `self.optimizer = optimizer`: the
        definition its one construction `Trainer(model, loader, optimizer)` passes in."""
        init = constructor(owner)
        if init is None:
            return None
        kept = m.Assign(
            targets=[m.AssignTarget(target=m.Attribute(value=m.Name("self"), attr=m.Name(attribute)))],
            value=m.Name(),
        )
        assigns = cast(list[cst.Assign], m.findall(init, kept))  # (the matcher checked each: `= name`)
        if len(assigns) != 1:
            return None
        argument = self.constructor_argument(owner, cast(cst.Name, assigns[0].value).value)
        return self.definition_of_name(argument, definitions) if argument is not None else None

    def constructor_argument(self, owner: cst.ClassDef | None, parameter: str) -> cst.Name | None:
        """The name that the one construction `Owner(...)` passes for a parameter of the class's
        `__init__`."""
        init = constructor(owner)
        if owner is None or init is None:
            return None
        params = [p.name.value for p in init.params.params]
        if parameter not in params:
            return None
        constructions = [c for c in self.index.nodes(cst.Call) if m.matches(c.func, m.Name(owner.name.value))]
        if len(constructions) != 1:
            return None
        call = constructions[0]
        keyword = next(
            (a.value for a in call.args if a.keyword is not None and a.keyword.value == parameter), None
        )
        position = params.index(parameter) - 1  # `self` is the object being built
        positional = [a.value for a in call.args if a.keyword is None and not a.star]
        argument = keyword or (positional[position] if 0 <= position < len(positional) else None)
        return argument if isinstance(argument, cst.Name) else None

    def definition_of_name(self, name: cst.Name, definitions: Sequence[D]) -> D | None:
        assignment = self.resolve(name)
        if assignment is None:
            return None
        statement = self.index.assignment_statement(assignment)
        found = next(
            (
                d
                for d in definitions
                if d.statement is statement and (not d.parameter or d.name == assignment.name)
            ),
            None,
        )
        if found is None and (returned := self.returned_name(assignment)) is not None:
            return self.definition_of_name(returned, definitions)  # `dataset, model, opt = build(seed)`
        return found

    def returned_name(self, assignment: Assignment, depth: int = 0) -> cst.Name | None:
        """`opt` in `return train_set, model, opt` for `dataset, model, optimizer = build(seed)`:
        the name a function of this file returns at the unpacked position (or returns whole, for
        `optimizer = build(model)`), when it has that one return."""
        node, position, length = assignment.node, None, 0
        parent = self.index.parent(node) if isinstance(node, cst.Name) else None
        if isinstance(parent, cst.Element) and isinstance(tuple_ := self.index.parent(parent), cst.Tuple):
            position, target = list(tuple_.elements).index(parent), self.index.parent(tuple_)
            length = len(tuple_.elements)
        else:
            target = parent
        assign = self.index.parent(target) if isinstance(target, cst.AssignTarget) else None
        if not (isinstance(assign, cst.Assign) and len(assign.targets) == 1 and depth < 8):
            return None
        call = assign.value
        if not (isinstance(call, cst.Call) and isinstance(call.func, cst.Name)):
            return None
        functions = [a.node for a in self.index.assignments(call.func)]
        if len(functions) != 1 or not isinstance(functions[0], cst.FunctionDef):
            return None
        function = functions[0]
        returns = [
            r
            for r in cast(list[cst.Return], m.findall(function, m.Return()))  # (m.Return() matched each)
            if self.index.enclosing_function(r) is function
        ]
        value = returns[0].value if len(returns) == 1 else None
        if value is None:
            return None
        if position is not None:
            if not (
                isinstance(value, cst.Tuple)
                and len(value.elements) == length
                and not any(isinstance(e, cst.StarredElement) for e in value.elements)
            ):
                return None
            value = value.elements[position].value
        return value if isinstance(value, cst.Name) else None

    # -- what a variable may hold (every value, where the above follows one) --------------------------
    def references(self, definition: cst.FunctionDef | cst.ClassDef) -> list[cst.Name] | None:
        """Every use of a module-level function's or class's name; None when it is not module level."""
        if not isinstance(self.index.parent(definition), cst.Module):
            return None
        scope = self.index.scope(definition)
        uses: list[cst.Name] = []
        for assignment in scope.assignments[definition.name.value] if scope is not None else []:
            if isinstance(assignment, Assignment) and assignment.node is definition:
                uses += [cast(cst.Name, access.node) for access in assignment.references]  # (a name's uses)
        return uses

    def names_super(self, use: cst.Name) -> bool:
        """`Owner` in `super(Owner, self)`: a use of a class's name that makes no instance."""
        argument = self.index.parent(use)
        call = self.index.parent(argument) if isinstance(argument, cst.Arg) else None
        return isinstance(call, cst.Call) and m.matches(call.func, m.Name("super"))

    def all_calls(self, definition: cst.FunctionDef | cst.ClassDef) -> list[cst.Call] | None:
        """Where a function (or a class, by its constructor) is called; None when its name is also
        used otherwise (passed as a callback, ...)."""
        uses = self.references(definition)
        if uses is None:
            return None
        calls: list[cst.Call] = []
        for use in uses:
            if self.names_super(use):
                continue
            call = self.index.parent(use)
            if not (isinstance(call, cst.Call) and call.func is use):
                return None
            calls.append(call)
        return calls

    def arguments_at_every_call(self, param: cst.Param) -> list[cst.BaseExpression] | None:
        """What a parameter receives at every call of its function (constructor calls for __init__)."""
        function = self.index.enclosing_function(param)
        if function is None:
            return None
        owner = self.method_class(function)
        if owner is not None and function.name.value == "__init__":
            calls = self.all_calls(owner)
            shift = 1  # Owner(x): x binds the parameter after self
        elif owner is None:
            calls, shift = self.all_calls(function), 0
        else:
            return None
        if not calls:
            return None
        params = list(function.params.posonly_params) + list(function.params.params)
        position = next((i for i, p in enumerate(params) if p is param), None)
        arguments = []
        for call in calls:
            keyword = [
                a.value for a in call.args if a.keyword is not None and a.keyword.value == param.name.value
            ]
            positional = [a.value for a in call.args if a.keyword is None and not a.star]
            if keyword:
                arguments.append(keyword[0])
            elif position is not None and 0 <= position - shift < len(positional):
                arguments.append(positional[position - shift])
            elif param.default is not None:
                arguments.append(param.default)
            else:
                return None
        return arguments

    def values(self, expression: cst.BaseExpression, depth: int = 0) -> list[cst.BaseExpression] | None:
        """The expressions a variable may hold, following assignments, `self.x = ...` in its class
        and parameters to every call site; None when unknown."""
        if depth > 8:
            return None
        attribute = self_attribute_name(expression)
        if attribute is not None:
            owner = self.enclosing_class(expression)
            held = m.Assign(
                targets=[m.AssignTarget(target=m.Attribute(value=m.Name("self"), attr=m.Name(attribute)))]
            )
            # (the matcher checked each: an Assign)
            assigns = cast(list[cst.Assign], m.findall(owner, held)) if owner is not None else []
            return self.values_of_all([a.value for a in assigns], depth) if assigns else None
        if not isinstance(expression, cst.Name):
            return [expression]
        assignments = self.index.assignments(expression)
        if not assignments:
            return None
        found = []
        for assignment in assignments:
            with_item = self.index.parent(cast(cst.CSTNode, self.index.parent(assignment.node)))
            if isinstance(assignment.node, cst.Param):
                arguments = self.arguments_at_every_call(assignment.node)
                more = self.values_of_all(arguments, depth) if arguments is not None else None
            elif (
                isinstance(with_item, cst.WithItem)
                and with_item.asname
                and with_item.asname.name is assignment.node
            ):
                more = self.values_of_all([with_item.item], depth)  # `with tqdm(loader) as bar`
            else:
                value = self.index.assigned_value(assignment)
                more = self.values_of_all([value], depth) if value is not None else None
            if more is None:
                return None
            found += more
        return found

    def values_of_all(
        self, expressions: Sequence[cst.BaseExpression], depth: int
    ) -> list[cst.BaseExpression] | None:
        found = []
        for expression in expressions:
            more = self.values(expression, depth + 1) if is_variable(expression) else [expression]
            if more is None:
                return None
            found += more
        return found

    def variable_key(self, expression: cst.BaseExpression) -> tuple[object, ...] | None:
        """What identifies a variable: its scope and name, or its class and `self.<attribute>`."""
        attribute = self_attribute_name(expression)
        if attribute is not None:
            owner = self.enclosing_class(expression)
            return ("self", id(owner), attribute) if owner is not None else None
        if isinstance(expression, cst.Name):
            assignments = self.index.assignments(expression)
            scope = assignments[0].scope if assignments else self.index.scope(expression)
            return (id(scope), expression.value)
        return None


def constructor(owner: cst.ClassDef | None) -> cst.FunctionDef | None:
    """The class's own `__init__`, if it defines one."""
    if owner is None:
        return None
    return next(
        (f for f in owner.body.body if isinstance(f, cst.FunctionDef) and f.name.value == "__init__"), None
    )
