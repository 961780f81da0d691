"""`loopshift verify`: run a training script under a patched Trainer and check that it trains,
and, given the original script, that it trains the same (same losses for the first K steps)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["ScriptError", "VerifyResult", "verify"]

if TYPE_CHECKING:
    from loopshift.verify.runner import ScriptError, VerifyResult, verify


def __getattr__(name: str) -> Any:
    """The runner's names, loaded on first use: the CLI imports this package for its command
    alone, and `loopshift lint` (a pre-commit hook) should not pay for the runner."""
    if name in __all__:
        return getattr(importlib.import_module("loopshift.verify.runner"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
