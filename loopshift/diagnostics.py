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
    cell: int | None = None  # in a notebook: the cell (1-based, as ruff counts) whose lines the span counts

    def render(self, path: str | None = None) -> str:
        where = f"{path or self.path}:cell {self.cell}" if self.cell else path or self.path
        return f"{where}:{self.span.line}:{self.span.column + 1}: {self.code} {self.message}"
