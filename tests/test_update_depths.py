"""The update at varying depths (tests/update_depths.py): in the batch loop, in a helper the loop
calls, in a method of a trainer class; the loops at module level, in main() or a per-epoch
function, under `if __name__ == "__main__":`, `try:` or `with tqdm(...)`. Each draw converts to
code that compiles, reads no undefined name, converts to itself again and leaves no raw loop for
the linter; a sample trains to the end and prints the original's
per-epoch losses. And the step returns the tensor backward() ran on, whatever the loop later
binds to the loss's name.
"""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis.control import currently_in_test_context
from update_depths import PRINTED, DepthProgram, depth_programs

from loopshift.checks import undefined_names
from loopshift.convert import convert_source
from loopshift.lint import lint_source

FAST = settings(deadline=None, database=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def show(text: str) -> None:
    """Shown with a failure: as a hypothesis note under @given, else in pytest's captured stdout."""
    if currently_in_test_context():
        note(text)
    else:
        print(text)


def check(p: DepthProgram):
    source = p.render()
    show(source)
    compile(source, "gen.py", "exec")
    assert undefined_names(source) == set()
    result = convert_source(source, path="gen.py")
    show(result.code)
    compile(result.code, "converted.py", "exec")
    assert undefined_names(result.code) == set()
    assert convert_source(result.code, path="gen.py").code == result.code
    assert (result.loops_converted, result.diagnostics) == (1, [])
    assert "trainer.fit(" in result.code and ".backward()" not in result.code
    assert "LS101" not in {f.code for f in lint_source(result.code, path="gen.py")}
    return result


@FAST
@given(depth_programs())
def test_update_at_any_depth_converts_or_says_why(p: DepthProgram) -> None:
    check(p)


# -- trained: the converted script prints the original's losses --------------------------------
SAMPLE = [
    DepthProgram("loop", "statement", "main", "try", "after_step", "train_step", True, 2),
    DepthProgram(
        "helper_globals", "assign", "epoch_function", "main_guard", "before_forward", "update", True, 2
    ),
    DepthProgram("helper_globals", "augmented", "module", "tqdm", "after_step", "step_fn", True, 2),
    DepthProgram("helper_globals", "statement", "main", None, "before_forward", "train_step", False, 1),
    DepthProgram("helper_arguments", "augmented", "main", "tqdm", "before_forward", "train_step", False, 2),
    DepthProgram("method", "augmented", "module", "main_guard", "after_step", "train_step", False, 2),
]


def printed(script: Path, cwd: Path) -> list[str]:
    run = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        cwd=cwd,
        check=True,
    )
    return [line for line in run.stdout.splitlines() if re.match(PRINTED, line)]


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("lightning") is None, reason="lightning is not installed")
@pytest.mark.parametrize("p", SAMPLE, ids=lambda p: f"{p.site}-{p.call}-{p.nesting}-{p.block}")
def test_converted_script_prints_the_original_losses(p: DepthProgram, tmp_path: Path) -> None:
    result = check(p)
    original, converted = tmp_path / "original.py", tmp_path / "converted.py"
    original.write_text(p.render())
    converted.write_text(result.code)
    expected = printed(original, tmp_path)
    assert len(expected) == p.epochs
    assert printed(converted, tmp_path) == expected
