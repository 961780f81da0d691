"""Trained to the end (seeded, on CPU), a converted script prints the numbers the original printed:
per-epoch metrics, test metrics after training, the epoch early stopping ends at, the best value."""
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FIXTURES

# looked up, not imported: importing lightning at collection costs every run seconds, the fast tier too
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(importlib.util.find_spec("lightning") is None, reason="lightning is not installed")]

# (fixture, script arguments, the printed lines to compare)
CASES = [
    ("test_after_training", [], r"epoch \d+: val loss|test loss"),
    ("inline_test_after_training", [], r"accuracy of the network"),
    ("corpus_tabular_plateau_early_stop", ["--output-dir", "{tmp}"], r"epoch +\d+ \||best val mse"),
    ("early_stopping_max_accuracy", [], r"epoch \d+ val_acc|best val_acc"),
    ("full_batch_polynomial", [], r"Result"),
    ("hand_update_module", [], r"Result"),
    ("hand_update_raw_tensors", [], r"Result"),
    ("lbfgs_closure", [], r"final mse"),
    ("reinforce_episodes", [], r"episode \d+"),
    ("step_loop_eval_after_step", [], r"step \d+:|best val loss"),
    ("corpus_resnet_step_loop_amp_clip", ["--ckpt-dir", "{tmp}"], r"step +\d+/|  eval @|done"),
    ("corpus_char_lstm_range_windows", [], r"== epoch \d+|epoch \d+ window"),
    # two processes: mp.spawn's against the Trainer's DDP with its distributed sampler (rank 0 prints)
    ("ddp_spawn_worker", ["--world-size", "2", "--out-dir", "{tmp}"], r"training on|epoch \d+ loss"),
]


def printed(script: Path, args: list[str], pattern: str, cwd: Path) -> list[str]:
    run = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=cwd, check=True)
    timings = re.compile(r"\d+(\.\d+)? ?m?s\b")  # wall-clock times differ from run to run
    return [timings.sub("<time>", line) for line in run.stdout.splitlines() if re.match(pattern, line)]


@pytest.mark.parametrize("case, args, pattern", CASES, ids=[c[0] for c in CASES])
def test_converted_script_prints_what_the_original_printed(case, args, pattern, tmp_path):
    args = [a.format(tmp=tmp_path) for a in args]
    expected = printed(FIXTURES / case / "input.py", args, pattern, tmp_path)
    assert expected and printed(FIXTURES / case / "expected.py", args, pattern, tmp_path) == expected
