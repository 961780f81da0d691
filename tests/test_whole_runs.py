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
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("lightning") is None, reason="lightning is not installed"),
]

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
    # names the loop left behind, read after training (the index, the epoch, a rebound name, a reopened file)
    ("range_batches_index_read_after", [], r"epoch \d+ loss|last batch"),
    ("checkpoint_reopened_after_training", [], r"epoch \d+ loss|status|reloaded"),
    # an evaluation with keyword defaults; an epoch's print before its evaluation keeps its place
    ("evaluate_keyword_defaults_epoch_print", [], r"epoch \d+|  val mse|final val mse"),
    # a sample from the prior after each epoch, moved to the module's device; --no-cuda still chooses the CPU
    (
        "corpus_vae_prior_sample_device",
        ["--epochs", "2", "--results", "{tmp}", "--no-cuda"],
        r"epoch \d+: mean",
    ),
    # updates in functions the loop calls, inlined: one per episode of an endless count(1), one per epoch
    ("corpus_reinforce_finish_episode", [], r"episode +\d+|solved|not solved"),
    ("corpus_graph_full_batch_train_function", ["--epochs", "30"], r"epoch \d+|test"),
    # a per-batch method of the user's Trainer class, summed into the epoch's mean loss; the optimizer
    # built and returned by a helper; DDP only under torchrun (here: one process, its own shuffling)
    ("corpus_trainer_run_batch", ["3", "2"], r"\[rank \d+\] epoch|epoch \d+: snapshot|holdout accuracy"),
    # an endless count(1) of steps ended by a loss threshold, the parameters updated through `.data`
    ("corpus_count_loop_threshold", [], r"batch +\d+:|Loss|==> Learned"),
    # train and val phases of one loop; a training function called twice (fine-tuning, then a frozen backbone)
    ("corpus_train_val_phases", [], r"Epoch \d+/\d+$| *(train|val) loss|Best val acc"),
    # two processes: mp.spawn's against the Trainer's DDP with its distributed sampler (rank 0 prints)
    ("ddp_spawn_worker", ["--world-size", "2", "--out-dir", "{tmp}"], r"training on|epoch \d+ loss"),
    # the DistributedSampler stepped through the loader (`train_loader.sampler.set_epoch(epoch)`)
    ("ddp_loader_sampler_set_epoch", ["--world-size", "2"], r"epoch \d+ batch"),
    # a worker both spawned and called directly (imagenet's launch): both paths
    ("ddp_worker_spawned_or_called", ["--out-dir", "{tmp}"], r"epoch \d+ batch"),
    (
        "ddp_worker_spawned_or_called",
        ["--multiprocessing-distributed", "--nprocs", "2", "--out-dir", "{tmp}"],
        r"epoch \d+ batch",
    ),
]


def printed(script: Path, args: list[str], pattern: str, cwd: Path) -> list[str]:
    run = subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        cwd=cwd,
        check=True,
    )
    timings = re.compile(r"\d+(\.\d+)? ?m?s\b")  # wall-clock times differ from run to run
    return [timings.sub("<time>", line) for line in run.stdout.splitlines() if re.match(pattern, line)]


@pytest.mark.parametrize("case, args, pattern", CASES, ids=[c[0] for c in CASES])
def test_converted_script_prints_what_the_original_printed(case, args, pattern, tmp_path):
    args = [a.format(tmp=tmp_path) for a in args]
    expected = printed(FIXTURES / case / "input.py", args, pattern, tmp_path)
    assert expected and printed(FIXTURES / case / "expected.py", args, pattern, tmp_path) == expected
