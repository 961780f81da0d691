"""What a lint rule is: a code, a name, its documentation, examples that are also its tests, and a check."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, ClassVar

from ..diagnostics import Diagnostic

if TYPE_CHECKING:
    import libcst as cst

    from ..analysis import Analyzer
    from ..index import CodeIndex
    from ..training import TrainingCode
    from .lightning import LightningFacts
    from .syntax import SyntaxFacts


@dataclass(frozen=True)
class Finding(Diagnostic):
    """A diagnostic of a lint rule; `fixable` when `--fix` can repair it."""

    fixable: bool = False


@dataclass(eq=False)
class Fix:
    """How to repair a finding: node replacements on the parsed tree (applied together with
    the other rules' replacements), or a rewrite of the whole source (applied alone)."""

    replacements: Mapping[cst.CSTNode, cst.CSTNode] = field(default_factory=dict)
    rewrite: Callable[[str], str] | None = None


class Context:
    """One parsed file and the facts about it that rules share, each computed once, on demand.
    Their modules load here, not above: the engine imports this module before it knows
    whether any file needs parsing at all."""

    def __init__(self, source: str, path: str, module: cst.Module, target: str = "lightning") -> None:
        self.source, self.path, self.module, self.target = source, path, module, target
        self.fixes: dict[Finding, Fix] = {}

    @cached_property
    def index(self) -> CodeIndex:
        from ..index import CodeIndex

        return CodeIndex(self.module)

    @cached_property
    def analyzer(self) -> Analyzer:
        from ..analysis import Analyzer

        return Analyzer(self.index)

    @cached_property
    def training(self) -> TrainingCode:
        """What analysis found: the same facts `loopshift convert` works from."""
        return self.analyzer.run()

    @cached_property
    def syntax(self) -> SyntaxFacts | None:
        """The standard library's `ast` view of the file, for rules decided on it alone; None
        where CPython rejects what libcst parsed."""
        from .syntax import parse

        return parse(self.source, self.path)

    @cached_property
    def lightning(self) -> LightningFacts:
        from .lightning import LightningFacts

        return LightningFacts(self.index)


class Rule:
    """The base of every rule: subclasses set the class attributes and write `check`.

    The docstring is the rule's documentation (`loopshift explain CODE`), in the sections
    What it does / Why is this bad? / Example / Use instead.
    """

    code: ClassVar[str]
    name: ClassVar[str]  # kebab-case, reads as "allow <name>"
    summary: ClassVar[str]  # one line, for `loopshift rules`
    fixable: ClassVar[bool] = False
    # Patterns (regular expressions) the source must all match for the rule to find anything:
    # files that miss one are never parsed for it (see engine). They must never hide a finding.
    needs: ClassVar[tuple[str, ...]] = ()
    VALID: ClassVar[list[str]] = []
    INVALID: ClassVar[list[str]] = []
    FIXED: ClassVar[list[tuple[str, str]]] = []  # (before, after) for fixable rules

    def check(self, context: Context) -> Iterable[Finding]:
        raise NotImplementedError

    def check_syntax(self, facts: SyntaxFacts) -> list[Finding]:
        """The findings decided on the standard library's ast (no libcst), exactly those of
        `check`; raises `syntax.Undecided` where only `check` can tell. By default every file
        that passes `needs` goes to `check`."""
        from .syntax import Undecided

        raise Undecided

    @classmethod
    def docs(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or "")

    @classmethod
    def sections(cls) -> dict[str, str]:
        """The documentation's `## Title` sections, by title."""
        parts = re.split(r"^## (.+)$", cls.docs(), flags=re.MULTILINE)
        return {title.strip(): body.strip() for title, body in zip(parts[1::2], parts[2::2])}

    @classmethod
    def could_match(cls, source: str) -> bool:
        return all(re.search(pattern, source) for pattern in cls.needs)

    def report(self, context: Context, node: cst.CSTNode, message: str, fix: Fix | None = None) -> Finding:
        finding = Finding(self.code, message, context.index.span(node), context.path, fixable=fix is not None)
        if fix is not None:
            context.fixes[finding] = fix
        return finding


def attribute(name: str) -> str:
    """A `needs` pattern for `.name`, with what Python allows between the dot and the name
    (spaces, line continuations, comments on the lines of a bracketed expression). A comment is
    matched with its line end, whole: one way to match it, so a miss costs linear time (a line of
    `#####` once made this pattern backtrack exponentially)."""
    return rf"\.(?:[ \t\r\n\f\\]|#[^\r\n]*[\r\n])*(?:{name})\b"
