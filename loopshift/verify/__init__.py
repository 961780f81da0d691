"""`loopshift verify`: run a training script under a patched Trainer and check that it trains,
and, given the original script, that it trains the same (same losses for the first K steps)."""

from loopshift.verify.runner import ScriptError, VerifyResult, verify

__all__ = ["ScriptError", "VerifyResult", "verify"]
