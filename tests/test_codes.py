"""The converter's diagnostic codes (LS0xx): the registry in loopshift/codes.py against the codes the
converter emits and the docs mention, and `loopshift explain` / `loopshift rules --all` on them."""

import inspect
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from loopshift import convert_source
from loopshift.codes import BY_CODE, CODES, lookup
from loopshift.lint.command import explain_command, rules_command
from loopshift.lint.rules import RULES

REPO = Path(__file__).parent.parent
PACKAGE = REPO / "loopshift"
EMITTED = re.compile(r"""["']LS0\d\d["']""")  # how the converter spells a code where it reports one
MENTIONED = re.compile(r"\bLS\d{3}\b")

APP = typer.Typer()
APP.command("rules")(rules_command)
APP.command("explain")(explain_command)


def invoke(*args: str):
    return CliRunner().invoke(APP, list(args))


def emitted_codes() -> dict[str, list[str]]:
    """Each `"LS0dd"` literal in the package's source (the registry aside), with where it is."""
    found: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "codes.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for literal in EMITTED.findall(line):
                found.setdefault(literal[1:-1], []).append(f"{path.relative_to(REPO)}:{number}")
    return found


def test_every_emitted_code_is_registered_and_every_registered_code_is_emitted() -> None:
    emitted = emitted_codes()
    unregistered = {code: where for code, where in emitted.items() if code not in BY_CODE}
    assert not unregistered, (
        f"codes the converter reports that loopshift/codes.py does not document: {unregistered}"
    )
    never = sorted(set(BY_CODE) - set(emitted))
    assert not never, f"codes loopshift/codes.py documents that nothing in loopshift/ reports: {never}"


def test_every_code_the_docs_mention_is_documented() -> None:
    known = set(BY_CODE) | {rule.code for rule in RULES}
    for doc in sorted(REPO.glob("*.md")):  # README.md (and PRODUCT.md where the repository has one)
        unknown = sorted(set(MENTIONED.findall(doc.read_text())) - known)
        assert not unknown, (
            f"{doc.name} mentions codes that are neither converter codes nor lint rules: {unknown}"
        )


def test_entries_are_well_formed() -> None:
    assert [entry.code for entry in CODES] == sorted(BY_CODE)  # unique, in order
    names = [entry.name for entry in CODES] + [rule.name for rule in RULES]
    assert len(set(names)) == len(names)  # `explain NAME` finds one thing
    for entry in CODES:
        assert re.fullmatch(r"LS0\d\d", entry.code)
        assert re.fullmatch(r"[a-z]+(-[a-z]+)+", entry.name), entry.name
        assert entry.title[0].isupper() and "\n" not in entry.title and not entry.title.endswith(".")
        assert entry.target in ("lightning", "fabric")
        assert lookup(entry.code.lower()) is entry and lookup(entry.name) is entry


@pytest.mark.parametrize("entry", CODES, ids=lambda entry: entry.code)
def test_the_example_is_what_convert_reports_the_code_on(entry) -> None:
    """The documented example, converted with the entry's target, reports that code and no other."""
    result = convert_source(inspect.cleandoc(entry.example) + "\n", target=entry.target)
    assert {d.code for d in result.diagnostics} == {entry.code}
    assert f"({entry.code})" in result.code  # the TODO comment


@pytest.mark.parametrize("entry", CODES, ids=lambda entry: entry.code)
def test_explain_renders_every_entry(entry) -> None:
    for asked in (entry.code, entry.code.lower(), entry.name):
        result = invoke("explain", asked)
        assert result.exit_code == 0, result.output
        heading, reported, body = result.stdout.split("\n\n", 2)
        assert heading == f"# {entry.name} ({entry.code})"
        assert reported.startswith("Reported by `loopshift convert") and f"({entry.code})" in reported
        sections = re.findall(r"^## (.+)$", body, flags=re.MULTILINE)
        assert sections == ["What it means", "Why convert reports it", "Example", "What to do"]
        assert entry.title in body and "```python\nimport torch" in body


def test_explain_ls002() -> None:
    result = invoke("explain", "LS002")
    assert result.exit_code == 0
    assert result.stdout.startswith("# stepping-not-expressible (LS002)\n")
    assert BY_CODE["LS002"].title in result.stdout


def test_explain_of_an_unknown_code_is_still_an_error() -> None:
    for code in ("LS004", "LS999", "no-such-rule"):
        result = invoke("explain", code)
        assert result.exit_code == 2
        assert f"error: unknown rule `{code}`" in result.stderr and not result.stdout


def test_rules_lists_the_lint_rules_and_with_all_the_converter_codes_too() -> None:
    lint_only = invoke("rules")
    assert lint_only.exit_code == 0
    assert [line.split()[0] for line in lint_only.stdout.splitlines()] == [rule.code for rule in RULES]
    every = invoke("rules", "--all")
    assert every.exit_code == 0
    lines = every.stdout.splitlines()
    assert [line.split()[0] for line in lines] == sorted([rule.code for rule in RULES] + list(BY_CODE))
    ls002 = next(line for line in lines if line.startswith("LS002 "))
    assert ls002.split()[1] == "stepping-not-expressible" and ls002.endswith(BY_CODE["LS002"].title)
    assert "[*]" not in ls002
    columns = {line.index(line.split()[2]) for line in lines if "[*]" not in line}
    assert len(columns) == 1  # one column for the summaries


def test_explaining_a_converter_code_imports_neither_libcst_nor_torch() -> None:
    script = textwrap.dedent("""\
        import sys
        import loopshift.cli
        code = loopshift.cli.main(["explain", "LS002"])
        heavy = ("libcst", "torch", "lightning", "loopshift.convert")
        print(code, sorted(m for m in heavy if m in sys.modules))
        """)
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "0 []"
