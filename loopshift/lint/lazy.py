"""libcst and its matchers, imported on first use.

The rules' modules name them at the top, yet importing the rules (for their codes and `needs`)
loads neither: a lint run whose files no selected rule could match never imports libcst, which
is most of a small run's time. Module-level matchers are therefore built inside functions.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["LazyModule", "cst", "m"]


class LazyModule:
    def __init__(self, name: str) -> None:
        self.__name__ = name

    def __getattr__(self, attribute: str) -> Any:  # only for names not copied in yet
        module = importlib.import_module(self.__name__)
        vars(self).update(vars(module))  # later look-ups are plain attribute reads
        return getattr(module, attribute)


if TYPE_CHECKING:  # what the lazy modules stand for
    import libcst as cst
    import libcst.matchers as m
else:
    cst = LazyModule("libcst")
    m = LazyModule("libcst.matchers")
