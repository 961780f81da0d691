"""What both targets share and neither owns: a conversion's result, the TODO comment every writer
puts above code it leaves as it was, and the module-level imports a conversion adds.

`convert.py` (the Trainer target) and `fabric/` (the Fabric target) both import from here, so
neither imports the other at module level."""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst
import libcst.matchers as m

from .diagnostics import Diagnostic

TODO = "# TODO(loopshift): "


@dataclass
class Result:
    code: str
    diagnostics: list[Diagnostic] = field(default_factory=list)
    loops_found: int = 0
    loops_converted: int = 0
    hint: str | None = None  # a line for the user: the Fabric target would avoid these TODOs


def add_import(module: cst.Module, line: str) -> cst.Module:
    """Adds the import after the module's leading imports (after its docstring when it has none)."""
    body = list(module.body)
    position = 0
    for number, statement in enumerate(body):
        if isinstance(statement, (cst.ClassDef, cst.FunctionDef)):
            break
        if m.matches(statement, m.SimpleStatementLine(body=[m.Import() | m.ImportFrom()])):
            position = number + 1
        elif number == 0 and m.matches(statement, m.SimpleStatementLine(body=[m.Expr(m.SimpleString())])):
            position = 1
    body.insert(position, cst.parse_statement(line, module.config_for_parsing))
    return module.with_changes(body=body)


def existing_alias(module: cst.Module, package: str) -> str | None:
    for statement in module.body:
        if not isinstance(statement, cst.SimpleStatementLine):
            continue
        for small in statement.body:
            if isinstance(small, cst.Import):
                for alias in small.names:
                    if m.matches(alias.name, m.Name(package)):
                        return alias.asname.name.value if alias.asname else package
    return None
