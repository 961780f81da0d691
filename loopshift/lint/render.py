"""Findings as text, JSON, GitHub workflow annotations or SARIF 2.1.0, and the summary line."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from .. import __version__
from .rule import Finding
from .rules import RULES

if TYPE_CHECKING:
    from .runner import FileReport

RULES_BY_CODE = {rule.code: rule for rule in RULES}
SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"


def render(findings: Sequence[Finding], output_format: str, failed: Sequence[FileReport] = ()) -> str:
    """What goes to stdout: one finding a line for text and github, one document for json and sarif.
    SARIF also carries the files that could not be linted; the other formats leave them to stderr."""
    if output_format == "json":
        return json.dumps([as_json(f) for f in findings], indent=2) + "\n"
    if output_format == "sarif":
        return json.dumps(as_sarif(findings, failed), indent=2) + "\n"
    line = github_line if output_format == "github" else Finding.render
    return "".join(line(f) + "\n" for f in findings)


def as_json(finding: Finding) -> dict:
    span = finding.span
    return {
        "code": finding.code,
        "name": RULES_BY_CODE[finding.code].name,
        "message": finding.message,
        "filename": finding.path,
        "location": {"row": span.line, "column": span.column + 1},
        "end_location": {"row": span.end_line, "column": span.end_column + 1},
        "fixable": finding.fixable,
        **({"cell": finding.cell} if finding.cell else {}),  # a notebook's: the rows count in that cell
    }


def github_line(finding: Finding) -> str:
    """A workflow command: GitHub shows it as an annotation on the line of the pull request."""
    span = finding.span
    properties = {
        "title": f"loopshift ({finding.code})",
        "file": finding.path,
        "line": span.line,
        "col": span.column + 1,
        "endLine": span.end_line,
        "endColumn": span.end_column + 1,
    }
    listed = ",".join(f"{key}={escape(str(value), property_value=True)}" for key, value in properties.items())
    return f"::error {listed}::{escape(f'{finding.code} {finding.message}')}"


def escape(text: str, property_value: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if property_value else text


def as_sarif(findings: Sequence[Finding], failed: Sequence[FileReport] = ()) -> dict:
    """A log valid against the OASIS SARIF 2.1.0 schema (tests/data/sarif-schema-2.1.0.json)."""
    rules = [
        {
            "id": rule.code,
            "name": rule.name,
            "shortDescription": {"text": rule.summary},
            "fullDescription": {"text": rule.sections()["What it does"]},
            "help": {"text": rule.docs(), "markdown": rule.docs()},
            "defaultConfiguration": {"level": "error"},
        }
        for rule in RULES
    ]
    position = {rule.code: i for i, rule in enumerate(RULES)}
    results = [
        {
            "ruleId": f.code,
            "ruleIndex": position[f.code],
            "level": "error",
            "message": {"text": f.message},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": artifact(f.path),
                        "region": {
                            "startLine": f.span.line,
                            "startColumn": f.span.column + 1,
                            "endLine": f.span.end_line,
                            "endColumn": f.span.end_column + 1,
                        },
                    }
                }
            ],
        }
        for f in findings
    ]
    # a file that could not be linted is not a clean file: say so where SARIF readers look
    notifications = [
        {
            "level": "error",
            "message": {"text": report.error},
            "locations": [{"physicalLocation": {"artifactLocation": artifact(report.path)}}],
        }
        for report in failed
    ]
    invocation = {"executionSuccessful": not failed, "toolExecutionNotifications": notifications}
    driver = {"name": "loopshift", "version": __version__, "rules": rules}
    run = {
        "tool": {"driver": driver},
        "invocations": [invocation],
        "results": results,
        "columnKind": "unicodeCodePoints",
    }  # libcst counts columns in characters, not UTF-16 units
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}


def artifact(path: str) -> dict:
    """A file as SARIF names it: a relative URI reference, or a file: URI for an absolute path."""
    file = Path(path)
    return {"uri": file.as_uri() if file.is_absolute() else quote(file.as_posix())}


def statistics(findings: Sequence[Finding], output_format: str) -> str:
    """A count per code, most frequent first."""
    counts = Counter(f.code for f in findings)
    fixable = Counter(f.code for f in findings if f.fixable)
    rows = [
        {"code": code, "name": RULES_BY_CODE[code].name, "count": count, "fixable": fixable[code]}
        for code, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    ]
    if output_format == "json":
        return json.dumps(rows, indent=2) + "\n"
    return "".join(
        f"{r['count']:>5}  {r['code']}  {'[*]' if r['fixable'] else '   '} {r['name']}\n" for r in rows
    )


def summary(remaining: int, fixed: int, fixable: int, failed: int = 0) -> str:
    """The closing lines on stderr, worded as ruff words them."""

    def plural(n: int, noun: str) -> str:
        return f"{n} {noun}{'' if n == 1 else 's'}"

    if fixed:
        lines = [f"Found {plural(fixed + remaining, 'error')} ({fixed} fixed, {remaining} remaining)."]
    elif remaining:
        lines = [f"Found {plural(remaining, 'error')}."]
        lines += [f"[*] {fixable} fixable with the `--fix` option."] if fixable else []
    else:
        lines = [] if failed else ["All checks passed!"]
    lines += [f"{plural(failed, 'file')} could not be linted."] if failed else []
    return "\n".join(lines)
