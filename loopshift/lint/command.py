"""The `lint`, `rules` and `explain` commands: thin typer layers over `loopshift.lint`.

Registered in cli.py with `app.command("lint")(lint_command)`, `app.command("rules")(rules_command)`
and `app.command("explain")(explain_command)`. The engine loads only when a command runs.
"""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


class OutputFormat(str, Enum):
    text = "text"
    json = "json"
    github = "github"
    sarif = "sarif"


def lint_command(
    paths: Optional[List[Path]] = typer.Argument(None, help="Files or folders to lint (default: the current folder)."),
    select: Optional[str] = typer.Option(None, "--select", help="Rules to run: comma-separated codes, prefixes, or ALL."),
    ignore: Optional[str] = typer.Option(None, "--ignore", help="Rules to leave out: codes, prefixes, or ALL."),
    output_format: OutputFormat = typer.Option(OutputFormat.text, "--output-format", help="How to print findings."),
    exit_zero: bool = typer.Option(False, "--exit-zero", help="Exit 0 even when there are findings."),
    fix: bool = typer.Option(False, "--fix", help="Apply the fixes of fixable rules, in place."),
    unsafe_fixes: bool = typer.Option(False, "--unsafe-fixes", help=(
        "With --fix, also write conversions that leave TODOs (those `loopshift convert` would report).")),
    statistics: bool = typer.Option(False, "--statistics", help="Print a count per rule instead of each finding."),
) -> None:
    """Find hand-written training loops and Lightning anti-patterns."""
    from ..source import InputError
    from . import render
    from .runner import lint_paths

    try:
        reports = lint_paths(paths or [Path(".")], select, ignore, fix=fix, unsafe_fixes=unsafe_fixes)
    except InputError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(EXIT_ERROR)
    findings = [finding for report in reports for finding in report.findings]
    failed = [report for report in reports if report.error]
    output = (render.statistics(findings, output_format.value) if statistics
              else render.render(findings, output_format.value, failed))
    typer.echo(output, nl=False)
    for report in reports:
        if report.error:
            typer.echo(report.error, err=True)
        for reason in report.withheld:
            typer.echo(f"{report.path}: not fixed: {reason}; `--unsafe-fixes` writes it", err=True)
        if report.fixed:
            typer.echo(f"{report.path}: fixed {', '.join(f'{code} x{n}' for code, n in sorted(report.fixed.items()))}",
                       err=True)
    fixed = sum(sum(report.fixed.values()) for report in reports)
    typer.echo(render.summary(len(findings), fixed, sum(f.fixable for f in findings), len(failed)), err=True)
    if failed:
        raise typer.Exit(EXIT_ERROR)
    raise typer.Exit(EXIT_FINDINGS if findings and not exit_zero else EXIT_CLEAN)


def rules_command() -> None:
    """List every lint rule: code, name, [*] when --fix can repair it, and what it finds."""
    from .rules import RULES

    width = max(len(rule.name) for rule in RULES)
    for rule in RULES:
        typer.echo(f"{rule.code}  {rule.name:<{width}}  {'[*]' if rule.fixable else '   '}  {rule.summary}")


def explain_command(code: str = typer.Argument(..., help="A rule code (LS101) or name (manual-training-loop).")) -> None:
    """Print one rule's documentation."""
    from .rules import RULES

    rule = next((r for r in RULES if code.upper() == r.code or code.lower() == r.name), None)
    if rule is None:
        typer.echo(f"error: unknown rule `{code}`; `loopshift rules` lists them", err=True)
        raise typer.Exit(EXIT_ERROR)
    fix = "Fix is available with `--fix`." if rule.fixable else "Fix is not available."
    typer.echo(f"# {rule.name} ({rule.code})\n\n{fix}\n\n{rule.docs()}")
