"""The Fabric target: keep the user's loop, hand devices, precision and distribution to Lightning Fabric."""

from __future__ import annotations

from ..core import Result
from ..index import CodeIndex
from ..source import calls_backward, parse_module
from .conversion import FabricConversion, LeavesTodo


def convert_fabric(source: str, path: str = "<string>", index: CodeIndex | None = None) -> Result:
    """Converts a module's training code to Lightning Fabric. Raises InputError on unparsable input.
    `index`: the module already parsed and indexed (by the Trainer's conversion), not done twice."""
    module = parse_module(source, path) if index is None else index.module
    if not calls_backward(source):  # no backward() call: nothing to hand to Fabric
        return Result(source)
    return FabricConversion(index or CodeIndex(module), source, path).run()


def fabric_hint(trainer: Result, source: str, path: str, index: CodeIndex) -> str | None:
    """When the Trainer target leaves TODOs that the Fabric target avoids, a line that says so."""
    if not calls_backward(source):
        return None
    try:  # (the conversion stops at its first TODO: then there is nothing to hint)
        fabric = FabricConversion(index, source, path, clean_only=True).run()
    except LeavesTodo:
        return None
    if fabric.diagnostics or not fabric.loops_converted:
        return None
    codes = sorted({d.code for d in trainer.diagnostics})
    return (
        f"{path}: hint: `--target fabric` keeps the loop as it is and converts it without "
        f"{'this TODO' if len(trainer.diagnostics) == 1 else 'these TODOs'} ({', '.join(codes)})"
    )
