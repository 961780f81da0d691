"""The Fabric target: keep the user's loop, hand devices, precision and distribution to Lightning Fabric."""
from __future__ import annotations

from ..convert import Result
from ..source import calls_backward, parse_module
from .conversion import FabricConversion


def convert_fabric(source: str, path: str = "<string>") -> Result:
    """Converts a module's training code to Lightning Fabric. Raises InputError on unparsable input."""
    module = parse_module(source, path)
    if not calls_backward(source):  # no backward() call: nothing to hand to Fabric
        return Result(source)
    return FabricConversion(module, source, path).run()


def fabric_hint(trainer: Result, source: str, path: str = "<string>") -> str | None:
    """When the Trainer target leaves TODOs that the Fabric target avoids, a line that says so."""
    if not trainer.diagnostics:
        return None
    fabric = convert_fabric(source, path)
    if fabric.diagnostics or not fabric.loops_converted:
        return None
    codes = sorted({d.code for d in trainer.diagnostics})
    return (f"{path}: hint: `--target fabric` keeps the loop as it is and converts it without "
            f"{'this TODO' if len(trainer.diagnostics) == 1 else 'these TODOs'} ({', '.join(codes)})")


def choose_target(trainer: Result, source: str, path: str = "<string>") -> Result:
    """`--target auto`: the Trainer's conversion, unless it leaves TODOs the Fabric target avoids."""
    if not trainer.diagnostics:
        return trainer
    fabric = convert_fabric(source, path)
    return fabric if not fabric.diagnostics and fabric.loops_converted else trainer
