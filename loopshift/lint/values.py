"""What a name holds, on the standard library's `ast`: the value of the assignment that reaches
a read, following a parameter to the argument of its function's one call site. The converter's
analysis answers the same question on libcst (`Analyzer.origins`); the rules decided on ast
ask here, with every binding of the module indexed in one walk."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cached_property

from .syntax import SyntaxFacts

SCOPES = (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
MAX_DEPTH = 8


@dataclass(frozen=True)
class Binding:
    order: int  # the binding's place in the module, in source order
    value: ast.AST | None  # what an assignment binds; None where there is none to follow
    parameter: ast.arg | None = None


@dataclass(frozen=True)
class Origin:
    """Where a read's value comes from: `bound` False when the module binds the name nowhere it
    can see (a builtin, a star import) or it is a parameter no single call site fills."""

    bound: bool
    value: ast.AST | None = None


UNBOUND = Origin(False)


class Values:
    def __init__(self, facts: SyntaxFacts) -> None:
        self.facts = facts

    def scope_of(self, node: ast.AST) -> ast.AST:
        return next(a for a in self.facts.ancestors(node) if isinstance(a, SCOPES))

    @cached_property
    def bindings(self) -> dict[tuple[int, str], list[Binding]]:
        """(id(scope), name) -> its bindings in source order."""
        found: dict[tuple[int, str], list[Binding]] = {}

        def bind(where: ast.AST, name: str, binding: Binding) -> None:
            found.setdefault((id(self.scope_of(where)), name), []).append(binding)

        named_targets: set[int] = set()
        for node in self.facts.in_order:
            order = self.facts.order[id(node)]
            if isinstance(node, (ast.Assign, ast.AnnAssign)):
                for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                    if isinstance(target, ast.Name):
                        named_targets.add(id(target))
                        bind(node, target.id, Binding(order, node.value))
            elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
                if id(node) not in named_targets:
                    bind(node, node.id, Binding(order, None))
            elif isinstance(node, ast.arg):
                bind(node, node.arg, Binding(order, None, node))
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                bind(node, node.name, Binding(order, None))
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    bind(node, (alias.asname or alias.name).split(".")[0], Binding(order, None))
        return found

    @cached_property
    def calls_by_name(self) -> dict[str, list[ast.Call]]:
        """Calls by the name called: `train(...)` and `self.train(...)` under `train`."""
        found: dict[str, list[ast.Call]] = {}
        for call in self.facts.nodes(ast.Call):
            func = call.func
            name = (
                func.id
                if isinstance(func, ast.Name)
                else func.attr
                if isinstance(func, ast.Attribute)
                else None
            )
            if name is not None:
                found.setdefault(name, []).append(call)
        return found

    def origin(self, name: ast.Name, depth: int = 0) -> Origin:
        """The value name holds where it is read: the last binding before the read in the
        nearest scope that binds it (class bodies are not seen from their methods), else its only
        binding; a parameter's value is the argument of the function's one call site."""
        scope: ast.AST | None = self.scope_of(name)
        first = True
        while scope is not None:
            bindings = self.bindings.get((id(scope), name.id))
            if bindings and (first or not isinstance(scope, ast.ClassDef)):
                return self.reaching(name, bindings, depth)
            first = False
            scope = next((a for a in self.facts.ancestors(scope) if isinstance(a, SCOPES)), None)
        return UNBOUND

    def reaching(self, read: ast.Name, bindings: list[Binding], depth: int) -> Origin:
        at = self.facts.order[id(read)]
        before = [b for b in bindings if b.order < at]
        if before:
            binding = before[-1]
        elif len(bindings) == 1:
            binding = bindings[0]
        else:
            return Origin(True)  # bound several times, all after the read: no one value
        if binding.parameter is None:
            return Origin(True, binding.value)
        argument = self.argument_for(binding.parameter) if depth < MAX_DEPTH else None
        return self.origin(argument, depth + 1) if isinstance(argument, ast.Name) else UNBOUND

    def argument_for(self, parameter: ast.arg) -> ast.AST | None:
        """What the one call site of parameter's function passes for it."""
        function = self.scope_of(parameter)
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return None
        calls = self.calls_by_name.get(function.name, [])
        if len(calls) != 1:
            return None
        call = calls[0]
        for keyword in call.keywords:
            if keyword.arg == parameter.arg:
                return keyword.value
        positional = function.args.posonlyargs + function.args.args
        if parameter not in positional or any(isinstance(a, ast.Starred) for a in call.args):
            return None
        skip = (
            1
            if isinstance(call.func, ast.Attribute) and isinstance(self.scope_of(function), ast.ClassDef)
            else 0
        )
        index = positional.index(parameter) - skip
        return call.args[index] if 0 <= index < len(call.args) else None
