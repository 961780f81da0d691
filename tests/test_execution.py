"""The converted fixtures train: under fast_dev_run with finite losses, and with the same losses
as the original script for the first optimizer steps (verify's parity mode)."""
import math
from pathlib import Path

import pytest

from loopshift.verify import verify

FIXTURES = Path(__file__).parent / "fixtures"
CONVERTED = sorted(p.parent for p in FIXTURES.glob("*/expected.py"))

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("case", CONVERTED, ids=[c.name for c in CONVERTED])
def test_converted_fixture_runs_under_fast_dev_run(case: Path) -> None:
    result = verify(case / "expected.py", steps=1, timeout=180)
    assert result.ok, f"{result.message}\n{result.error}\n{result.output}"
    assert "train" in result.stages
    assert result.losses and all(math.isfinite(loss) for loss in result.losses)


@pytest.mark.parametrize("case", CONVERTED, ids=[c.name for c in CONVERTED])
def test_converted_fixture_reproduces_the_original_losses(case: Path) -> None:
    result = verify(case / "expected.py", original=case / "input.py", steps=3, timeout=180)
    assert result.ok, f"{result.message}\n{result.error}\n{result.output}"
    assert len(result.losses) == len(result.original_losses) == 3
    assert result.max_abs_diff is not None and result.max_abs_diff <= 1e-4 * max(map(abs, result.original_losses))
