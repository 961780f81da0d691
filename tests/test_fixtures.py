"""Golden fixtures: tests/fixtures/<case>/input.py converts to expected.py (no expected.py: a
no-op case, the output equals the input), with the diagnostics in diagnostics.txt."""

from pathlib import Path

import libcst as cst
import pytest
from conftest import FIXTURES, check_golden, rendered

from loopshift import convert_source

CASES = sorted(p.parent for p in FIXTURES.glob("*/input.py"))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_fixture(case: Path, update_fixtures: bool) -> None:
    source = (case / "input.py").read_text()
    result = convert_source(source, path=f"{case.name}/input.py")
    expected = case / "expected.py"
    if expected.exists() or (update_fixtures and result.code != source):
        check_golden(expected, result.code, update_fixtures)
    else:
        assert result.code == source, "no expected.py: this case must convert to itself"
    diagnostics = case / "diagnostics.txt"
    if update_fixtures and diagnostics.exists() and not result.diagnostics:
        diagnostics.unlink()
    if diagnostics.exists() or result.diagnostics:
        check_golden(diagnostics, rendered(result, case), update_fixtures)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_converted_code_is_a_fixed_point(case: Path) -> None:
    """Converting converted code changes nothing, and it parses."""
    golden = case / "expected.py"
    source = golden.read_text() if golden.exists() else (case / "input.py").read_text()
    cst.parse_module(source)
    compile(source, str(golden), "exec")
    assert convert_source(source).code == source
