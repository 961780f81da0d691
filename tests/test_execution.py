"""The converted fixtures train: under fast_dev_run with finite losses, and with the same losses
as the original script for the first optimizer steps (verify's parity mode)."""

import math
from pathlib import Path

import pytest

from loopshift.verify import verify

FIXTURES = Path(__file__).parent / "fixtures"
# the cases whose conversion produced a Trainer (the others are no-op or TODO-only cases)
CONVERTED = sorted(p.parent for p in FIXTURES.glob("*/expected.py") if "trainer.fit(" in p.read_text())

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("case", CONVERTED, ids=[c.name for c in CONVERTED])
def test_converted_fixture_runs_under_fast_dev_run(case: Path) -> None:
    result = verify(case / "expected.py", steps=1, timeout=180)
    assert result.ok, f"{result.message}\n{result.error}\n{result.output}"
    assert "train" in result.stages
    assert result.losses and all(math.isfinite(loss) for loss in result.losses)


@pytest.mark.parametrize("case", CONVERTED, ids=[c.name for c in CONVERTED])
def test_converted_fixture_reproduces_the_original_losses(case: Path) -> None:
    # enough optimizer steps to cross an epoch boundary: per-epoch code runs between them
    result = verify(case / "expected.py", original=case / "input.py", steps=12, timeout=240)
    assert result.ok, f"{result.message}\n{result.error}\n{result.output}"
    # one loss per backward call: with gradient accumulation, several per optimizer step
    assert len(result.losses) == len(result.original_losses) >= 3
    assert result.max_abs_diff is not None and result.max_abs_diff <= 1e-4 * max(
        map(abs, result.original_losses)
    )


@pytest.mark.parametrize(
    "change",
    [
        ("lr=1e-3", "lr=2e-3"),  # another learning rate
        (
            "        loss = criterion(logits, y)\n",
            "        loss = criterion(logits, y) * 1.5\n",
        ),  # a changed line
    ],
    ids=["learning-rate", "changed-loss-line"],
)
def test_parity_fails_on_an_altered_conversion(tmp_path: Path, change) -> None:
    expected = (FIXTURES / "flat_script" / "expected.py").read_text()
    assert change[0] in expected
    altered = tmp_path / "altered.py"
    altered.write_text(expected.replace(change[0], change[1]))
    result = verify(altered, original=FIXTURES / "flat_script" / "input.py", steps=3, timeout=180)
    assert not result.ok and "differ" in result.message
    from loopshift.verify.command import render_result

    assert "<-" in render_result(result)


def test_parity_fails_when_a_line_is_dropped(tmp_path: Path) -> None:
    expected = (FIXTURES / "mnist_style_functions" / "expected.py").read_text()
    altered = tmp_path / "altered.py"
    altered.write_text(expected.replace("        x = self.dropout(x)\n", ""))
    result = verify(altered, original=FIXTURES / "mnist_style_functions" / "input.py", steps=2, timeout=180)
    assert not result.ok and result.original_losses and result.losses[0] != result.original_losses[0]


def test_converted_fixture_survives_ddp_with_two_processes() -> None:
    result = verify(FIXTURES / "mnist_style_functions" / "expected.py", devices=2, timeout=240)
    assert result.ok, f"{result.message}\n{result.error}\n{result.output}"
    assert result.losses and all(math.isfinite(loss) for loss in result.losses)


def test_convert_verify_in_place_keeps_no_copy(tmp_path: Path, capsys) -> None:
    from loopshift.cli import main

    script = tmp_path / "train.py"
    script.write_text((FIXTURES / "flat_script" / "input.py").read_text())
    assert main(["convert", "--in-place", "--verify", str(script)]) == 0
    assert "PASS" in capsys.readouterr().out
    assert script.read_text() == (FIXTURES / "flat_script" / "expected.py").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.py"]


def test_parity_of_a_single_step() -> None:
    """The default --steps 1: the converted run is stopped right after its first optimizer step."""
    case = FIXTURES / "mnist_style_functions"
    result = verify(case / "expected.py", original=case / "input.py", steps=1, timeout=180)
    assert result.ok, result.message
    assert result.stages == ("train",) and len(result.losses) == 1 == len(result.original_losses)
