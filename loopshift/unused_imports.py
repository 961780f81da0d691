"""Imports the conversion left unused: `from tqdm import tqdm` once the progress bar that read it
went (Lightning draws its own). Only a name the input read and the output no longer reads goes, so
an import kept for its side effects, or one the user never read, stays as it was.

On CPython's own `symtable` and `ast`, as checks.py: milliseconds, no libcst.
"""

from __future__ import annotations

import ast
import symtable


def globals_read(source: str) -> set[str]:
    """The module-level names read anywhere: at module level, or as globals from any function or
    class (a local of the same name does not count)."""
    module = symtable.symtable(source, "<module>", "exec")
    read = {s.get_name() for s in module.get_symbols() if s.is_referenced()}
    tables = list(module.get_children())
    while tables:
        table = tables.pop()
        read |= {s.get_name() for s in table.get_symbols() if s.is_referenced() and s.is_global()}
        tables.extend(table.get_children())
    return read


def without_unused_imports(source: str, code: str) -> str:
    """The converted code without the top-level import lines whose every name the input read and
    the output does not (a line that holds more than the import, a comment say, stays)."""
    try:
        tree = ast.parse(code)
        before, after = globals_read(source), globals_read(code)
    except (SyntaxError, ValueError):
        return code
    lines = code.split("\n")
    dropped = set()
    for node in tree.body:
        if not isinstance(node, (ast.Import, ast.ImportFrom)) or node.lineno != node.end_lineno:
            continue
        bound = [alias.asname or alias.name.split(".")[0] for alias in node.names]
        if "*" in bound or not all(name in before and name not in after for name in bound):
            continue
        line = lines[node.lineno - 1]
        # `import torch.distributed as dist` also loads the submodule for `torch.distributed.x`
        dotted = [a.name for a in node.names if isinstance(node, ast.Import) and "." in a.name]
        if any(code.count(name) > 1 for name in dotted):
            continue
        if line.strip() == ast.get_source_segment(code, node):
            dropped.add(node.lineno - 1)
    if not dropped:
        return code
    return "\n".join(line for number, line in enumerate(lines) if number not in dropped)
