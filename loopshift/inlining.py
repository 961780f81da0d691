"""Follows an update into the loop that drives it: a function holding backward() and the optimizer
step, called once as a statement from a loop's body (`self._run_batch(source, targets)` in the batch
loop, `train(epoch)` in the epoch loop, `loss = train(input, target, ...)` per example), is inlined
at its call, so that the loop itself holds the update and converts as any other.

Inlining keeps the program's meaning: the call's arguments are bound to the parameters
(`source = batch[0]` unless the names already agree), the final `return value` becomes the call's
target (`total += value`), and nothing is inlined where that could change what a name denotes: a
function with other returns, `global`/`nonlocal`, `yield`, `*args`, locals the caller also uses,
or more than one use.
"""

from __future__ import annotations

import libcst as cst
import libcst.matchers as m

BACKWARD = m.SimpleStatementLine(body=[m.Expr(value=m.Call(func=m.Attribute(attr=m.Name("backward"))))])
LOOP = (cst.For, cst.While)


def inline_update_functions(module: cst.Module) -> cst.Module | None:
    """The module with each update function inlined at its one call in a loop; None when none is."""
    inliner = Inliner(module)
    calls = inliner.plan()
    if not calls:
        return None
    return module.visit(inliner)


class Inliner(cst.CSTTransformer):
    def __init__(self, module: cst.Module) -> None:
        self.module = module
        self.parents: dict[cst.CSTNode, cst.CSTNode] = {}
        self.inlined: dict[int, list[cst.BaseStatement]] = {}  # call statement -> its replacement
        self.removed: set[int] = set()  # the inlined function definitions

    # -- planning, on the original tree -------------------------------------------------
    def plan(self) -> dict[int, list[cst.BaseStatement]]:
        self.record_parents(self.module)
        for function in m.findall(self.module, m.FunctionDef()):
            if not self.updates_without_loop(function):
                continue
            call_statement = self.single_call_in_loop(function)
            if call_statement is None:
                continue
            body = self.inlined_body(function, call_statement)
            if body is not None:
                self.inlined[id(call_statement)] = body
                self.removed.add(id(function))
        return self.inlined

    def record_parents(self, node: cst.CSTNode) -> None:
        for child in node.children:
            self.parents[child] = node
            self.record_parents(child)
        if node is self.module:  # names and attributes by spelling: one walk, not one per function
            self.names: dict[str, list[cst.Name]] = {}
            self.attributes: dict[str, list[cst.Attribute]] = {}
            for child in self.parents:
                if isinstance(child, cst.Name):
                    self.names.setdefault(child.value, []).append(child)
                elif isinstance(child, cst.Attribute):
                    self.attributes.setdefault(child.attr.value, []).append(child)

    def ancestors(self, node: cst.CSTNode):
        while (node := self.parents.get(node)) is not None:
            yield node

    def updates_without_loop(self, function: cst.FunctionDef) -> bool:
        """Holds a backward() statement and an optimizer-like `.step()`, neither inside a loop of its own."""
        backwards = m.findall(function.body, BACKWARD)
        steps = m.findall(function.body, m.Call(func=m.Attribute(attr=m.Name("step"))))
        inner = [
            n
            for n in [*backwards, *steps]
            for a in self.ancestors(n)
            if isinstance(a, (*LOOP, cst.FunctionDef)) and a is not function and self.is_below(a, function)
        ]
        return len(backwards) == 1 and bool(steps) and not inner

    def scope_of(self, node: cst.CSTNode) -> cst.CSTNode:
        """The function (or the module) whose own code holds node; a class body counts as its own."""
        return next(
            (a for a in self.ancestors(node) if isinstance(a, (cst.FunctionDef, cst.ClassDef, cst.Lambda))),
            self.module,
        )

    def local_elsewhere(self, name: cst.Name) -> bool:
        """A name a function binds for itself (`train = np.concatenate(...)` in a helper)."""
        function = next((a for a in self.ancestors(name) if isinstance(a, cst.FunctionDef)), None)
        return function is not None and (
            any(p.name.value == name.value for p in function.params.params)
            or bool(m.findall(function.body, m.AssignTarget(target=m.Name(name.value))))
        )

    def is_below(self, node: cst.CSTNode, function: cst.FunctionDef) -> bool:
        return any(a is function for a in self.ancestors(node))

    def single_call_in_loop(self, function: cst.FunctionDef) -> cst.SimpleStatementLine | None:
        name = function.name.value
        method = isinstance(self.parents.get(self.parents.get(function)), cst.ClassDef)
        owner = self.parents.get(self.parents.get(function)) if method else None
        if method:
            uses = m.findall(owner, m.Attribute(value=m.Name("self"), attr=m.Name(name)))
            if len(self.attributes.get(name, [])) != len(uses):
                return None  # reached from elsewhere too
            uses = [use.attr for use in uses]
        else:
            uses = [
                n
                for n in self.names.get(name, [])
                if n is not function.name
                and not (
                    isinstance(parent := self.parents.get(n), cst.Attribute) and parent.attr is n
                )  # not `model.train`
                and not self.local_elsewhere(n)
            ]
        if len(uses) != 1:
            return None
        callee = self.parents.get(uses[0]) if method else uses[0]  # `self._run_batch` / `train`
        call = self.parents.get(callee)
        if not (isinstance(call, cst.Call) and call.func is callee):
            return None
        value = call  # the call, or the head of a chain on its value: `train_step(x, y).item()`
        while isinstance(parent := self.parents.get(value), (cst.Attribute, cst.Call)) and (
            getattr(parent, "value", None) is value or getattr(parent, "func", None) is value
        ):
            value = parent
        statement = self.parents.get(value)
        line = self.parents.get(statement)
        if not isinstance(line, cst.SimpleStatementLine) or len(line.body) != 1:
            return None
        if not (
            isinstance(statement, cst.Expr)
            or (isinstance(statement, cst.AugAssign) and statement.value is value)
            or (
                isinstance(statement, cst.Assign) and len(statement.targets) == 1 and statement.value is value
            )
        ):
            return None
        block = self.parents.get(line)
        if not (isinstance(block, cst.IndentedBlock) and isinstance(self.parents.get(block), LOOP)):
            return None
        if self.is_below(line, function):
            return None
        return line

    def inlined_body(self, function: cst.FunctionDef, line: cst.SimpleStatementLine) -> list | None:
        params = function.params
        if (
            params.star_arg not in (cst.MaybeSentinel.DEFAULT, None)
            or params.star_kwarg
            or params.kwonly_params
            or params.posonly_params
            or function.decorators
            or function.asynchronous
        ):
            return None
        if m.findall(function.body, m.Global() | m.Nonlocal() | m.Yield()):
            return None
        names = [p.name.value for p in params.params]
        method = isinstance(self.parents.get(self.parents.get(function)), cst.ClassDef)
        if method:
            if not names or names[0] != "self":
                return None
            names = names[1:]
        body = list(function.body.body)
        if body and m.matches(body[0], m.SimpleStatementLine(body=[m.Expr(value=m.SimpleString())])):
            body = body[1:]  # the docstring
        returned = None
        if body and m.matches(body[-1], m.SimpleStatementLine(body=[m.Return()])):
            returned = body.pop().body[0].value
        if not body or m.findall(cst.IndentedBlock(body=body), m.Return()):
            return None  # an early return: the loop's code after the call would run where it did not
        statement = line.body[0]
        call = next(c for c in m.findall(statement, m.Call()) if self.calls(c, function))
        if returned is None and (statement.value is not call or not isinstance(statement, cst.Expr)):
            return None  # its value, None, is read
        bound = self.bind(function, names, call)
        if bound is None:
            return None
        # an argument that is a plain name stands for its parameter (`opt.step()` becomes
        # `optimizer.step()`), unless the function binds either name or reads the argument's own
        renamed = {
            name: value.value for name, value in bound if isinstance(value, cst.Name) and value.value != name
        }
        if m.findall(function.body, m.FunctionDef() | m.Lambda() | m.ClassDef()):
            renamed = {}
        read = {n.value for n in m.findall(function.body, m.Name())}
        local = self.bound_in(body)
        renamed = {
            name: argument for name, argument in renamed.items() if argument not in read and name not in local
        }
        caller = next((a for a in self.ancestors(line) if isinstance(a, cst.FunctionDef)), self.module)
        caller_names = {n.value for n in m.findall(caller, m.Name()) if self.scope_of(n) is caller}
        rebound = {n.value for t in getattr(statement, "targets", []) for n in m.findall(t.target, m.Name())}
        if (local - set(names) - rebound - {"_"}) & caller_names:
            return None  # a local of the function the caller uses too: inlining would share it
        lines = [
            cst.parse_statement(f"{name} = {self.module.code_for_node(value)}")
            for name, value in bound
            if not (isinstance(value, cst.Name) and value.value == name) and name not in renamed
        ]
        lines += [s.visit(RenameNames(renamed)) for s in body]
        if returned is not None:
            returned = returned.visit(RenameNames(renamed))
        if returned is not None and statement.value is not call:  # `total += train_step(x, y).item()`
            lines.append(line.deep_replace(call, returned).with_changes(leading_lines=[]))
        elif returned is not None and not isinstance(statement, cst.Expr):
            lines.append(line.with_changes(body=[statement.with_changes(value=returned)], leading_lines=[]))
        elif returned is not None and not is_pure(returned):
            lines.append(cst.SimpleStatementLine([cst.Expr(returned)]))  # its value unused, its effects kept
        lines[0] = lines[0].with_changes(leading_lines=[*line.leading_lines, *lines[0].leading_lines])
        return lines

    def calls(self, call: cst.Call, function: cst.FunctionDef) -> bool:
        """Whether the call is of the function (`train_step(...)`, `self._run_batch(...)`)."""
        func = call.func
        name = func.attr if isinstance(func, cst.Attribute) else func
        return isinstance(name, cst.Name) and name.value == function.name.value

    def bound_in(self, body: list[cst.BaseStatement]) -> set[str]:
        """The names the statements bind (assignment, loop and `with` targets)."""
        return {
            n.value
            for s in body
            for n in m.findall(s, m.Name())
            if isinstance(
                self.parents.get(n), (cst.AssignTarget, cst.AugAssign, cst.For, cst.AsName, cst.Element)
            )
        }

    def bind(self, function: cst.FunctionDef, names: list[str], call: cst.Call) -> list | None:
        """(parameter, value) pairs, as the call passes them (defaults where it does not)."""
        params = [p for p in function.params.params if p.name.value in names]
        values: dict[str, cst.BaseExpression] = {}
        positional = [a for a in call.args if a.keyword is None]
        if any(a.star for a in call.args) or len(positional) > len(params):
            return None
        for param, arg in zip(params, positional):
            values[param.name.value] = arg.value
        for arg in call.args:
            if arg.keyword is not None:
                if arg.keyword.value not in names or arg.keyword.value in values:
                    return None
                values[arg.keyword.value] = arg.value
        for param in params:
            if param.name.value not in values:
                if param.default is None:
                    return None
                values[param.name.value] = param.default
        return [(name, values[name]) for name in names]

    # -- rewriting -------------------------------------------------------------------
    def leave_IndentedBlock(self, original, updated):
        return updated.with_changes(body=self.rebuilt(original.body, updated.body))

    def leave_Module(self, original, updated):
        return updated.with_changes(body=self.rebuilt(original.body, updated.body))

    def leave_ClassDef(self, original, updated):
        return updated

    def rebuilt(self, originals, updateds) -> list:
        body = []
        for original, updated in zip(originals, updateds):
            if id(original) in self.removed:
                continue
            body.extend(self.inlined.get(id(original), [updated]))
        return body


class RenameNames(cst.CSTTransformer):
    """Renames variables (not attribute names or keywords): `opt.step()` -> `optimizer.step()`."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names

    def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.Name:
        return (
            updated.with_changes(value=self.names[original.value])
            if original.value in self.names
            else updated
        )

    def leave_Attribute(self, original: cst.Attribute, updated: cst.Attribute) -> cst.Attribute:
        return updated.with_changes(attr=original.attr)

    def leave_Arg(self, original: cst.Arg, updated: cst.Arg) -> cst.Arg:
        return updated.with_changes(keyword=original.keyword)


def is_pure(expression: cst.BaseExpression) -> bool:
    """Computing it has no effect to keep (`policy_loss.item()`, `total / n`) when nothing reads it."""
    calls = m.findall(expression, m.Call())
    return all(m.matches(call, m.Call(func=m.Attribute(attr=m.Name("item")), args=[])) for call in calls)
