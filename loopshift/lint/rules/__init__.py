"""Every rule, one module each, found by listing this package: adding a rule is adding a module."""

from __future__ import annotations

import importlib
import pkgutil

from ..rule import Rule


def discover() -> tuple[Rule, ...]:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    return tuple(sorted((cls() for cls in Rule.__subclasses__()), key=lambda rule: rule.code))


RULES = discover()
