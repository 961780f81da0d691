"""loopshift: convert hand-written PyTorch training loops to PyTorch Lightning."""
from .convert import Result, convert_source
from .diagnostics import Diagnostic, Span
from .source import InputError

__all__ = ["Diagnostic", "InputError", "Result", "Span", "convert_source", "convert_file", "lint_source"]
__version__ = "0.1.0"


def lint_source(source: str, path: str = "<string>", select=None, ignore=None):
    """Lint findings for one module's source (see loopshift.lint)."""
    from .lint import lint_source as lint

    return lint(source, path=path, select=select, ignore=ignore)


def convert_file(path, target: str = "lightning") -> Result:
    """Reads and converts one file; raises InputError with a one-line message on bad input."""
    from pathlib import Path

    from .source import read_source

    path = Path(path)
    return convert_source(read_source(path), target=target, path=str(path))
