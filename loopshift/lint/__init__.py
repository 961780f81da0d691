"""`loopshift lint`: raw training loops (LS1xx) and Lightning anti-patterns (LS2xx), one rule a module."""

from .engine import lint_source, select_rules
from .rule import Finding, Rule
from .rules import RULES

__all__ = ["RULES", "Finding", "Rule", "lint_paths", "lint_source", "select_rules"]


def __getattr__(name: str):
    if name == "lint_paths":  # the file walker and process pool load only when used
        from .runner import lint_paths

        return lint_paths
    raise AttributeError(name)
