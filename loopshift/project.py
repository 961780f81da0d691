"""The user's own modules a script imports: a script with no training loop of its own often calls
one that lives beside it (`from trainer import Trainer`, then `Trainer(config, model, data).run()`).

Imports are read with `ast` (cheap, no libcst) and resolved the way Python resolves them when the
script runs: against the script's own folder, which is first on `sys.path`.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import libcst as cst
import libcst.helpers

from .output import default_output


@dataclass(frozen=True)
class LocalImport:
    module: str  # `trainer`, as the script names it
    file: Path  # the file it resolves to
    line: int


def local_imports(path: Path, source: str) -> list[LocalImport]:
    """The modules of the script's folder it imports, in source order, each once."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    found: dict[Path, LocalImport] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level in (0, 1):
            names = [node.module]
        else:
            continue
        for name in names:
            file = module_file(path.parent, name)
            if file is not None and file.resolve() != path.resolve() and file not in found:
                found[file] = LocalImport(name, file, node.lineno)
    return sorted(found.values(), key=lambda i: i.line)


def module_file(folder: Path, name: str) -> Path | None:
    base = folder.joinpath(*name.split("."))
    # a module file; a package's `__init__.py` is not followed (its copy would be no module of it)
    candidate = base.with_suffix(".py")
    return candidate if candidate.is_file() else None


def trains(file: Path) -> bool:
    """Whether a module holds a backward call (a cheap text check; the converter decides the rest)."""
    try:
        return ".backward(" in file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def output_module(module: str, file: Path) -> str:
    """The dotted name of a module's converted copy: `trainer` -> `trainer_lightning`."""
    return ".".join([*module.split(".")[:-1], default_output(file).stem])


class RenameImports(cst.CSTTransformer):
    """`from trainer import Trainer` -> `from trainer_lightning import Trainer`, and
    `import trainer` -> `import trainer_lightning as trainer`: the script's names stay."""

    def __init__(self, renames: dict[str, str]) -> None:
        self.renames = renames

    def leave_ImportFrom(self, original: cst.ImportFrom, updated: cst.ImportFrom) -> cst.ImportFrom:
        if updated.module is None or len(updated.relative) > 1:
            return updated
        name = cst.helpers.get_full_name_for_node(updated.module)
        if name in self.renames:
            return updated.with_changes(module=cst.parse_expression(self.renames[name]))
        return updated

    def leave_Import(self, original: cst.Import, updated: cst.Import) -> cst.Import:
        names = []
        for alias in updated.names:
            name = cst.helpers.get_full_name_for_node(alias.name)
            if name in self.renames and "." not in name:
                alias = alias.with_changes(
                    name=cst.Name(self.renames[name]),
                    asname=alias.asname or cst.AsName(name=cst.Name(name)),
                )
            names.append(alias)
        return updated.with_changes(names=names)


def with_imports_renamed(source: str, renames: dict[str, str]) -> str:
    """The script importing the converted modules in place of the originals."""
    module = cst.parse_module(source)
    return module.visit(RenameImports(renames)).code
