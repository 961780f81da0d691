"""The `lint`, `rules` and `explain` commands: thin typer layers over `loopshift.lint` (and, for the
converter's diagnostic codes, `loopshift.codes`).

Registered in cli.py with `app.command("lint")(lint_command)`, `app.command("rules")(rules_command)`
and `app.command("explain")(explain_command)`. The engine loads only when a command runs.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


class OutputFormat(str, Enum):
    text = "text"
    json = "json"
    github = "github"
    sarif = "sarif"


def lint_command(
    paths: list[Path] | None = typer.Argument(
        None, help="Files or folders to lint (default: the current folder)."
    ),
    select: str | None = typer.Option(
        None, "--select", help="Rules to run: comma-separated codes, prefixes, or ALL."
    ),
    ignore: str | None = typer.Option(None, "--ignore", help="Rules to leave out: codes, prefixes, or ALL."),
    output_format: OutputFormat = typer.Option(
        OutputFormat.text, "--output-format", help="How to print findings."
    ),
    exit_zero: bool = typer.Option(False, "--exit-zero", help="Exit 0 even when there are findings."),
    fix: bool = typer.Option(False, "--fix", help="Apply the fixes of fixable rules, in place."),
    unsafe_fixes: bool = typer.Option(
        False,
        "--unsafe-fixes",
        help=(
            "With --fix, also write conversions that leave TODOs (those `loopshift convert` would report)."
        ),
    ),
    statistics: bool = typer.Option(
        False, "--statistics", help="Print a count per rule instead of each finding."
    ),
) -> None:
    """Find hand-written training loops and Lightning anti-patterns."""
    from ..source import InputError
    from . import render
    from .runner import lint_paths

    try:
        reports = lint_paths(paths or [Path(".")], select, ignore, fix=fix, unsafe_fixes=unsafe_fixes)
    except InputError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(EXIT_ERROR) from None
    findings = [finding for report in reports for finding in report.findings]
    failed = [report for report in reports if report.error]
    output = (
        render.statistics(findings, output_format.value)
        if statistics
        else render.render(findings, output_format.value, failed)
    )
    typer.echo(output, nl=False)
    for report in reports:
        if report.error:
            typer.echo(report.error, err=True)
        for reason in report.withheld:
            typer.echo(f"{report.path}: not fixed: {reason}; `--unsafe-fixes` writes it", err=True)
        if report.fixed:
            counts = ", ".join(f"{code} x{n}" for code, n in sorted(report.fixed.items()))
            typer.echo(f"{report.path}: fixed {counts}", err=True)
    fixed = sum(sum(report.fixed.values()) for report in reports)
    typer.echo(render.summary(len(findings), fixed, sum(f.fixable for f in findings), len(failed)), err=True)
    if failed:
        raise typer.Exit(EXIT_ERROR)
    raise typer.Exit(EXIT_FINDINGS if findings and not exit_zero else EXIT_CLEAN)


def rules_command(
    every: bool = typer.Option(False, "--all", help="Also list the converter's diagnostic codes (LS0xx)."),
) -> None:
    """List every lint rule: code, name, [*] when --fix can repair it, and what it finds; with --all,
    the converter's diagnostic codes (LS0xx) too."""
    from ..codes import CODES
    from .rules import RULES

    listed = [(rule.code, rule.name, rule.fixable, rule.summary) for rule in RULES]
    if every:
        listed = sorted(listed + [(entry.code, entry.name, False, entry.title) for entry in CODES])
    width = max(len(name) for _, name, _, _ in listed)
    for code, name, fixable, summary in listed:
        typer.echo(f"{code}  {name:<{width}}  {'[*]' if fixable else '   '}  {summary}")


def explain_command(
    code: str = typer.Argument(
        ..., help="A rule or converter diagnostic code (LS101, LS002), or its name (manual-training-loop)."
    ),
) -> None:
    """Print one rule's documentation, or one converter diagnostic's (LS0xx)."""
    from ..codes import lookup
    from .rules import RULES

    rule = next((r for r in RULES if code.upper() == r.code or code.lower() == r.name), None)
    if rule is None:
        entry = lookup(code)
        if entry is None:
            typer.echo(f"error: unknown rule `{code}`; `loopshift rules --all` lists them", err=True)
            raise typer.Exit(EXIT_ERROR)
        typer.echo(f"# {entry.name} ({entry.code})\n\n{entry.reported()}\n\n{entry.docs()}")
        return
    fix = "Fix is available with `--fix`." if rule.fixable else "Fix is not available."
    typer.echo(f"# {rule.name} ({rule.code})\n\n{fix}\n\n{rule.docs()}")
