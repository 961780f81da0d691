"""Checks on a conversion's output before anyone sees it: it compiles, and it reads no name that
the input defined and the output no longer does (a NameError waiting for the line that reads it).

Both run on CPython's own compiler (`symtable`, `ast`): a few milliseconds, no libcst metadata.
"""

from __future__ import annotations

import ast
import builtins
import symtable

from .core import TODO
from .diagnostics import Diagnostic, Span

# Names every module has without binding them.
MODULE_NAMES = {
    "__name__",
    "__file__",
    "__doc__",
    "__builtins__",
    "__spec__",
    "__loader__",
    "__package__",
    "__path__",
    "__annotations__",
    "__dict__",
    "__cached__",
}


class UncompilableOutput(Exception):
    """The conversion produced code that CPython rejects: a bug of loopshift's, never written."""


def undefined_names(source: str, path: str = "<string>") -> set[str]:
    """Names read as globals (at module level or from any function or class) that the module never
    binds and that are not builtins. Empty when a star import makes the question unanswerable."""
    module = symtable.symtable(source, path, "exec")
    if any(s.get_name() == "*" for s in module.get_symbols()):
        return set()
    known = (
        set(dir(builtins))
        | MODULE_NAMES
        | {
            s.get_name()
            for s in module.get_symbols()
            if s.is_assigned() or s.is_imported() or s.is_namespace()
        }
    )
    missing = {s.get_name() for s in module.get_symbols() if s.is_referenced() and s.get_name() not in known}
    tables = list(module.get_children())
    while tables:
        table = tables.pop()
        missing |= {
            s.get_name()
            for s in table.get_symbols()
            if s.is_referenced() and s.is_global() and s.get_name() not in known
        }
        tables.extend(table.get_children())
    return missing


def first_reads(tree: ast.Module, names: set[str]) -> dict[str, ast.stmt]:
    """The innermost statement of the first read of each name as a global (not where a function,
    lambda or comprehension binds it), in source order."""
    found: dict[str, ast.stmt] = {}

    def visit(node: ast.AST, statement: ast.stmt | None, local: frozenset[str]) -> None:
        if isinstance(node, ast.stmt):
            statement = node
        if isinstance(
            node,
            (
                ast.FunctionDef,
                ast.AsyncFunctionDef,
                ast.Lambda,
                ast.ListComp,
                ast.SetComp,
                ast.DictComp,
                ast.GeneratorExp,
            ),
        ):
            local = local | bound_in(node)
        if (
            isinstance(node, ast.Name)
            and isinstance(node.ctx, ast.Load)
            and node.id in names
            and node.id not in local
            and statement is not None
        ):
            previous = found.get(node.id)
            if previous is None or (statement.lineno, statement.col_offset) < (
                previous.lineno,
                previous.col_offset,
            ):
                found[node.id] = statement
        for child in ast.iter_child_nodes(node):
            visit(child, statement, local)

    visit(tree, None, frozenset())
    return found


def bound_in(scope: ast.AST) -> frozenset[str]:
    """The names a function, lambda or comprehension binds itself (parameters, targets)."""
    names: set[str] = set()
    if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        arguments = scope.args
        names |= {
            a.arg
            for a in [
                *arguments.posonlyargs,
                *arguments.args,
                *arguments.kwonlyargs,
                *filter(None, [arguments.vararg, arguments.kwarg]),
            ]
        }
    body = (
        scope.body
        if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef))
        else [g.target for g in getattr(scope, "generators", [])]
    )
    for part in body:
        for node in ast.walk(part):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.alias):
                names.add((node.asname or node.name).split(".")[0])
    return frozenset(names)


def backward_line(tree: ast.Module) -> int:
    """The line of the input's first `.backward(` call: where its training code is."""
    calls = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "backward"
    ]
    return min(calls, default=1)


def check_output(source: str, code: str, path: str) -> tuple[str, list[Diagnostic]]:
    """The output with a TODO above the first read of each name the conversion left undefined, and
    an LS010 diagnostic for each, placed at the input's training code."""
    try:
        missing = undefined_names(code, path) - undefined_names(source, path)
        tree = ast.parse(code, path) if missing else None
    except SyntaxError as error:
        raise UncompilableOutput(f"line {error.lineno}: {error.msg}") from None
    if tree is None:
        return code, []
    line = backward_line(ast.parse(source, path))
    lines = code.splitlines(keepends=True)
    diagnostics, inserted = [], 0
    for name, statement in sorted(first_reads(tree, missing).items(), key=lambda item: item[1].lineno):
        reason = (
            f"`{name}` is read here, but the conversion no longer defines it (a variable of the moved "
            "training code): read it from the trained module, or keep the loop (LS010)"
        )
        position = statement.lineno - 1 + inserted
        text = lines[position]
        indent = text[: len(text) - len(text.lstrip())]
        newline = "\r\n" if text.endswith("\r\n") else "\n"
        lines.insert(position, f"{indent}{TODO}{reason}{newline}")
        inserted += 1
        message = (
            f"`{name}` is read at line {position + 2} of the converted code, which no longer defines it "
            "(a variable of the moved training code)"
        )
        diagnostics.append(Diagnostic("LS010", message, Span(line, 0, line, 0), path))
    return "".join(lines), diagnostics
