"""Mixed precision: `torch.autocast` blocks (`torch.amp`, `torch.cuda.amp`, `torch.cpu.amp`) and a
`GradScaler`.

The fact (`Autocast`) is read off each autocast call once per module (`autocast_of(index, call)`):
the precision it runs ("16-mixed" or "bf16-mixed": a `dtype=`, else the device's default, bfloat16
on CPU) and its `enabled=` switch. Then
- the Trainer target writes `Trainer(precision=...)` and Lightning autocasts the whole
  training_step (`trainer_precision`);
- the Fabric target writes `Fabric(precision=...)` and `fabric.autocast()`, only when it understood
  every argument of the blocks (`fabric_setting`).
Both read the same `mode`, so they cannot choose different precisions for one script.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass

import libcst as cst
import libcst.matchers as m

from .. import torch_names
from ..index import CodeIndex

DEVICE_TYPE_FIRST = {"torch.autocast", "torch.amp.autocast", "torch.amp.autocast_mode.autocast"}
CPU_ONLY = {"torch.cpu.amp.autocast"}
# torch's parameters in order: torch.autocast(device_type, dtype, enabled, cache_enabled), and the
# device-specific torch.cuda.amp / torch.cpu.amp.autocast(enabled, dtype, cache_enabled)
SIGNATURES = {
    True: ("device_type", "dtype", "enabled", "cache_enabled"),
    False: ("enabled", "dtype", "cache_enabled"),
}
KEYWORDS = {"device_type", "dtype", "enabled", "cache_enabled"}
CPU = m.SimpleString('"cpu"') | m.SimpleString("'cpu'")


@dataclass(frozen=True, eq=False)
class Autocast:
    """One `torch.autocast(...)` call of a `with` block."""

    call: cst.Call
    mode: str | None  # "16-mixed" / "bf16-mixed"; None: a dtype that is neither half precision
    enabled: cst.BaseExpression | None  # `use_amp` in `enabled=use_amp`
    # only `device_type` by position, and keywords torch.autocast takes: what Fabric rewrites
    understood: bool


_FACTS: weakref.WeakKeyDictionary[CodeIndex, dict[int, Autocast]] = weakref.WeakKeyDictionary()


def autocast_of(index: CodeIndex, call: cst.Call) -> Autocast:
    """The fact of an autocast call (`index.called_name(call) & torch_names.AUTOCASTS`), read once."""
    facts = _FACTS.setdefault(index, {})
    if id(call) not in facts:
        facts[id(call)] = read_autocast(index, call)
    return facts[id(call)]


def read_autocast(index: CodeIndex, call: cst.Call) -> Autocast:
    names = index.called_name(call)
    device_first = bool(names & DEVICE_TYPE_FIRST)
    signature = SIGNATURES[device_first]
    arguments: dict[str, cst.BaseExpression] = {}
    positional = [a for a in call.args if a.keyword is None]
    understood = not any(a.star for a in call.args) and len(positional) <= (1 if device_first else 0)
    for position, arg in enumerate(positional):
        if not arg.star and position < len(signature):
            arguments[signature[position]] = arg.value
    for arg in call.args:
        if arg.keyword is not None:
            arguments[arg.keyword.value] = arg.value
            understood = understood and arg.keyword.value in KEYWORDS
    dtype, device_type = arguments.get("dtype"), arguments.get("device_type")
    if dtype is not None:
        dtypes = index.qualified_names(dtype)
        half = "16-mixed" if dtypes & {"torch.float16", "torch.half"} else None
        mode = "bf16-mixed" if "torch.bfloat16" in dtypes else half
    elif names & CPU_ONLY or (device_type is not None and m.matches(device_type, CPU)):
        mode = "bf16-mixed"  # autocast's default on CPU
    else:
        mode = "16-mixed"
    return Autocast(call, mode, arguments.get("enabled"), understood)


def scaler_enabled(scaler: cst.Call) -> cst.BaseExpression | None:
    """`enabled=` of `GradScaler(...)`."""
    return next(
        (a.value for a in scaler.args if a.keyword is not None and a.keyword.value == "enabled"), None
    )


def is_grad_scaler(index: CodeIndex, call: cst.BaseExpression | None) -> bool:
    return isinstance(call, cst.Call) and bool(index.called_name(call) & torch_names.GRAD_SCALERS)


# -- the Trainer target --------------------------------------------------------------------------
def trainer_precision(
    autocasts: list[Autocast], scaler: cst.Call | None
) -> tuple[str, cst.BaseExpression | None]:
    """(`Trainer(precision=)`, the `enabled=` flag that switches it to "32-true"): the blocks'
    precision (a GradScaler alone: fp16), the scaler's `enabled=` over the blocks'."""
    mode = next((a.mode for a in reversed(autocasts) if a.mode is not None), "16-mixed")
    enabled = next((a.enabled for a in reversed(autocasts) if a.enabled is not None), None)
    if scaler is not None and scaler_enabled(scaler) is not None:
        enabled = scaler_enabled(scaler)
    return mode, enabled


def trainer_arguments(
    setting: tuple[str, cst.BaseExpression | None], code: Callable[[cst.BaseExpression], str]
) -> list[str]:
    """`precision="16-mixed"`, or `precision="16-mixed" if use_amp else "32-true"` for `enabled=use_amp`."""
    mode, enabled = setting
    return [
        f'precision="{mode}"' if enabled is None else f'precision="{mode}" if {code(enabled)} else "32-true"'
    ]


# -- the Fabric target ---------------------------------------------------------------------------
def fabric_setting(
    autocast: Autocast, code: Callable[[cst.BaseExpression], str]
) -> tuple[str, str | None] | None:
    """(`Fabric(precision=)`, the code of `enabled=`) for one block; None when Fabric would not do
    exactly what it does (the block then stays as written)."""
    if not autocast.understood or autocast.mode is None:
        return None
    return autocast.mode, code(autocast.enabled) if autocast.enabled is not None else None
