"""Runs the rules over one file: one parse, one index, one analysis shared by every rule."""

from __future__ import annotations

import ast
import re
from collections import Counter
from collections.abc import Iterable, Sequence

from ..source import InputError, parse_module
from .rule import Context, Finding, Fix, Rule
from .rules import RULES

Selectors = Sequence[str] | str | None  # codes and prefixes (LS101, LS2, ALL), or one comma-separated string
NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:[\s,]+[A-Z]+[0-9]+)*))?", re.IGNORECASE)
MAX_FIX_PASSES = 5


class UnsafeFix(Exception):
    """Raised by a rewrite whose result `convert` would not write cleanly (it left TODOs): applied only
    with --unsafe-fixes, as ruff applies unsafe fixes."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(reason)
        self.source, self.reason = source, reason


# -- which rules run ----------------------------------------------------------------------
def selectors(value: Selectors) -> list[str] | None:
    """`"ls101, LS2"` or `["ls101", "LS2"]` -> `["LS101", "LS2"]`; None stays None (not given)."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else value
    return [item.strip().upper() for item in items if item.strip()]


def check_selectors(*groups: Selectors, where: str = "error") -> None:
    for selector in (s for group in groups for s in selectors(group) or ()):
        if selector != "ALL" and not any(rule.code.startswith(selector) for rule in RULES):
            raise InputError(f"{where}: unknown rule code or prefix `{selector}`")


def specificity(code: str, selectors: Iterable[str]) -> int:
    """How closely the best selector matches code: -1 none, 0 `ALL`, else the prefix length."""
    return max(
        (0 if s == "ALL" else len(s) for s in selectors if s == "ALL" or code.startswith(s)), default=-1
    )


def enabled_codes(layers: Iterable[tuple[Selectors, Selectors]]) -> set[str]:
    """Codes left on by (select, ignore) layers, later layers (the command line) winning.

    Within a layer the more specific selector wins (`--select LS2 --ignore LS204`, or
    `--ignore LS2 --select LS204`) and ignore wins a tie. A layer that selects starts afresh;
    one that only ignores narrows what earlier layers left on.
    """
    codes = {rule.code for rule in RULES}
    for select, ignore in layers:
        select, ignore = selectors(select), selectors(ignore) or []
        if select is not None:
            codes = {
                rule.code for rule in RULES if specificity(rule.code, select) > specificity(rule.code, ignore)
            }
        else:
            codes = {code for code in codes if specificity(code, ignore) < 0}
    return codes


def select_rules(select: Selectors = None, ignore: Selectors = None) -> list[Rule]:
    check_selectors(select, ignore)
    codes = enabled_codes([(select, ignore)])
    return [rule for rule in RULES if rule.code in codes]


# -- one file -----------------------------------------------------------------------------
def run_rules(
    source: str, path: str, rules: Sequence[Rule], target: str = "lightning"
) -> tuple[Context | None, list[Finding], list[Finding]]:
    """(context, findings kept, findings suppressed by noqa), deciding each rule on the standard
    library's `ast` where the rule can (`Rule.check_syntax`); a rule that cannot decide a file
    runs its libcst `check`, and only then is libcst imported and the file parsed by it (the
    context returned; None when no rule needed it). A file whose text misses what every rule
    `needs` is only compiled, to report syntax errors. Finds exactly what `run_rules_cst` finds
    (tests/test_lint_engines.py compares them file by file)."""
    from .syntax import Undecided, parse

    rules = [rule for rule in rules if rule.could_match(source)]
    if not rules:
        check_syntax(source, path)
        return None, [], []
    facts = parse(source, path)
    if facts is None:  # CPython rejects it: libcst reports the error, or parses what it accepts
        return run_rules_cst(source, path, rules, target)
    found: set[Finding] = set()
    undecided = []
    for rule in rules:
        try:
            found.update(rule.check_syntax(facts))
        except Undecided:
            undecided.append(rule)
    context = None
    if undecided:
        context = Context(source, path, parse_module(source, path), target)
        found.update(f for rule in undecided for f in rule.check(context))
    return (context, *keep_or_suppress(source, found))


def run_rules_cst(
    source: str, path: str, rules: Sequence[Rule], target: str = "lightning"
) -> tuple[Context | None, list[Finding], list[Finding]]:
    """The libcst engine: every rule's `check` on one libcst parse. `--fix` runs here (fixes
    are libcst trees), and it is what `run_rules` is tested against."""
    rules = [rule for rule in rules if rule.could_match(source)]
    if not rules:
        check_syntax(source, path)
        return None, [], []
    context = Context(source, path, parse_module(source, path), target)
    return (context, *keep_or_suppress(source, {f for rule in rules for f in rule.check(context)}))


def keep_or_suppress(source: str, found: Iterable[Finding]) -> tuple[list[Finding], list[Finding]]:
    findings = sorted(found, key=lambda f: (f.span.line, f.span.column, f.code))
    lines = source.split("\n")  # libcst's lines: str.splitlines() also splits at \f, \x1c, ...
    kept: list[Finding] = []
    suppressed: list[Finding] = []
    for finding in findings:
        (suppressed if is_suppressed(finding, lines) else kept).append(finding)
    return kept, suppressed


def check_syntax(source: str, path: str) -> None:
    try:
        compile(source, path, "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
    except (SyntaxError, ValueError):
        parse_module(source, path)  # raises InputError with the file and line


def is_suppressed(finding: Finding, lines: list[str]) -> bool:
    line = lines[finding.span.line - 1] if finding.span.line <= len(lines) else ""
    if "#" not in line:
        return False
    for match in NOQA.finditer(line):
        codes = match.group("codes")
        if codes is None or finding.code in re.split(r"[\s,]+", codes.upper()):
            return True
    return False


def lint_source(
    source: str, path: str = "<string>", select: Selectors = None, ignore: Selectors = None
) -> list[Finding]:
    """The findings of the selected rules in one module. Raises InputError on unparsable input."""
    return run_rules(source, path, select_rules(select, ignore))[1]


def fix_source(
    source: str,
    path: str,
    rules: Sequence[Rule],
    target: str = "lightning",
    unsafe: bool = False,
    withheld: list[str] | None = None,
) -> tuple[str, list[Finding], Counter[str]]:
    """Applies the fixes of the findings that are not suppressed, pass after pass, until none is
    left: (new source, findings that remain, findings gone per code). A fix can take other
    findings with it: converting a loop also removes its device moves (LS103). An unsafe fix
    applies only when `unsafe`; otherwise why it was not is added to `withheld`."""
    context, kept, suppressed = run_rules_cst(source, path, rules, target)
    found = Counter(finding.code for finding in kept)
    for _ in range(MAX_FIX_PASSES):
        chosen = chosen_for_one_pass(applicable_fixes(context, kept, suppressed).values()) if context else []
        new_source = apply_fixes(context, chosen, unsafe, withheld) if chosen and context else source
        if new_source == source:
            break
        try:
            parse_module(new_source, path)
        except InputError:  # a fix never leaves code that does not parse: that would be our bug
            raise RuntimeError(
                "a fix produced code that does not parse; the file is left as it was"
            ) from None
        source = new_source
        context, kept, suppressed = run_rules_cst(source, path, rules, target)
    return source, kept, found - Counter(finding.code for finding in kept)


def applicable_fixes(context: Context, kept: list[Finding], suppressed: list[Finding]) -> dict[Finding, Fix]:
    """Fixes of kept findings; a fix shared with a suppressed finding (one conversion for the
    whole file, one rewrite of a Trainer call) is not applied."""
    vetoed = {id(context.fixes[f]) for f in suppressed if f in context.fixes}
    return {f: context.fixes[f] for f in kept if f in context.fixes and id(context.fixes[f]) not in vetoed}


def chosen_for_one_pass(fixes: Iterable[Fix]) -> list[Fix]:
    """The fixes one pass applies: every node replacement, or else the first whole-source rewrite."""
    fixes = list({id(fix): fix for fix in fixes}.values())
    return [fix for fix in fixes if fix.rewrite is None] or fixes[:1]


def apply_fixes(
    context: Context, fixes: list[Fix], unsafe: bool = False, withheld: list[str] | None = None
) -> str:
    if fixes[0].rewrite is not None:
        try:
            return fixes[0].rewrite(context.source)
        except UnsafeFix as fix:
            if unsafe:
                return fix.source
            if withheld is not None:
                withheld.append(fix.reason)
            return context.source
    from .replace import ReplaceNodes

    replacements = {id(old): new for fix in fixes for old, new in fix.replacements.items()}
    return context.module.visit(ReplaceNodes(replacements)).code
