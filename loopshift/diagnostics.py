"""What loopshift reports: a code, a place and a reason."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    """A source range: 1-based lines, 0-based columns (libcst's convention)."""

    line: int
    column: int
    end_line: int
    end_column: int


@dataclass(frozen=True)
class Diagnostic:
    code: str
    message: str
    span: Span
    path: str = "<string>"

    def render(self, path: str | None = None) -> str:
        return f"{path or self.path}:{self.span.line}:{self.span.column + 1}: {self.code} {self.message}"

