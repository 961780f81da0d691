"""loopshift: convert hand-written PyTorch training loops to PyTorch Lightning."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .diagnostics import Diagnostic, Span
from .source import InputError

__all__ = ["Diagnostic", "InputError", "Result", "Span", "convert_file", "convert_source", "lint_source"]
__version__ = "0.1.0"

if TYPE_CHECKING:
    from .convert import Result, convert_source


def __getattr__(name: str):
    """`Result` and `convert_source` load the converter (and libcst) when first asked for, so
    that `loopshift lint` and `import loopshift` stay quick."""
    if name in ("Result", "convert_source"):
        from . import convert

        return getattr(convert, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def lint_source(source: str, path: str = "<string>", select=None, ignore=None):
    """Lint findings for one module's source (see loopshift.lint)."""
    from .lint import lint_source as lint

    return lint(source, path=path, select=select, ignore=ignore)


def convert_file(path, target: str = "lightning") -> Result:
    """Reads and converts one file; raises InputError with a one-line message on bad input."""
    from pathlib import Path

    from .convert import convert_source
    from .source import read_source

    path = Path(path)
    return convert_source(read_source(path), target=target, path=str(path))
