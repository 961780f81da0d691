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


# Convert could not do something safely: the code stays as it was, with a TODO comment.
CONVERT_CODES = {
    "LS001": "training loop shape not understood",
    "LS002": "stepping that automatic optimization cannot express",
    "LS003": "early exit from the batch loop",
    "LS004": "scheduler stepped in a way that was not converted",
    "LS005": "optimizer or scheduler used outside the training loop",
    "LS006": "epoch loop not understood",
    "LS007": "gradient accumulation that Lightning's differs from at the end of an epoch",
}
