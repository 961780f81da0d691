"""The converter's diagnostic codes (LS0xx): the registry in loopshift/codes.py against the codes the
converter emits and the docs mention."""
import inspect
import re
from pathlib import Path

import pytest

from loopshift import convert_source
from loopshift.codes import BY_CODE, CODES, lookup
from loopshift.lint.rules import RULES

REPO = Path(__file__).parent.parent
PACKAGE = REPO / "loopshift"
EMITTED = re.compile(r"""["']LS0\d\d["']""")  # how the converter spells a code where it reports one
MENTIONED = re.compile(r"\bLS\d{3}\b")


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
    assert not unregistered, f"codes the converter reports that loopshift/codes.py does not document: {unregistered}"
    never = sorted(set(BY_CODE) - set(emitted))
    assert not never, f"codes loopshift/codes.py documents that nothing in loopshift/ reports: {never}"


def test_every_code_the_docs_mention_is_documented() -> None:
    known = set(BY_CODE) | {rule.code for rule in RULES}
    for doc in sorted(REPO.glob("*.md")):  # README.md (and PRODUCT.md where the repository has one)
        unknown = sorted(set(MENTIONED.findall(doc.read_text())) - known)
        assert not unknown, f"{doc.name} mentions codes that are neither converter codes nor lint rules: {unknown}"


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
