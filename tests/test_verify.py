"""loopshift verify: runs tiny scripts for real (each run is a subprocess that imports torch)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from loopshift.verify import ScriptError, VerifyResult, harness, verify
from loopshift.verify.command import render_result, verify_command

LIGHTNING_SCRIPT = """
import argparse

import lightning as L
import torch
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class LitClassifier(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))

    def forward(self, x):
        return self.model(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.cross_entropy(self(x), y))

    def test_step(self, batch, batch_idx):
        x, y = batch
        self.log("test_loss", nn.functional.cross_entropy(self(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, required=True)
    args = parser.parse_args()
    loader = DataLoader(TensorDataset(torch.randn(32, 4), torch.randint(0, 2, (32,))), batch_size=8)
    checkpoint = ModelCheckpoint(dirpath="checkpoints", monitor="val_loss")
    trainer = L.Trainer(max_epochs=args.epochs, callbacks=[checkpoint, LearningRateMonitor()])
    trainer.fit(LitClassifier(), loader, loader)
    trainer.test(dataloaders=loader)
"""

RAISING_SCRIPT = """
import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class Broken(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.model = nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        raise RuntimeError("boom in training_step")

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


loader = DataLoader(TensorDataset(torch.randn(8, 4)), batch_size=4)
L.Trainer().fit(Broken(), loader)
"""

RAW_LOOP = """
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def main():
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    data = TensorDataset(torch.randn(32, 4), torch.randint(0, 2, (32,)))
    loader = DataLoader(data, batch_size=8)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(2):
        for x, y in loader:
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()


if __name__ == "__main__":
    main()
"""

LIGHTNING_EQUIVALENT = """
import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class LitNet(L.LightningModule):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self.model(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.model.parameters(), lr=LEARNING_RATE)


def main():
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    data = TensorDataset(torch.randn(32, 4), torch.randint(0, 2, (32,)))
    loader = DataLoader(data, batch_size=8)
    trainer = L.Trainer(max_epochs=2)
    trainer.fit(LitNet(model), train_dataloaders=loader)


if __name__ == "__main__":
    main()
"""


# LIGHTNING_EQUIVALENT (at learning rate 0.1) with `code` after its trainer.fit, in main()
def after_fit(code: str) -> str:
    equivalent = LIGHTNING_EQUIVALENT.replace("LEARNING_RATE", "0.1")
    fit = "    trainer.fit(LitNet(model), train_dataloaders=loader)\n"
    assert fit in equivalent
    return equivalent.replace(fit, fit + textwrap.indent(textwrap.dedent(code).lstrip(), "    "))


TEST_STEP_BEFORE = "    def configure_optimizers(self):\n"
TEST_STEP_AFTER = (
    """    test_batches = 0

    def test_step(self, batch, batch_idx):
        self.test_batches += 1

"""
    + TEST_STEP_BEFORE
)


def line_of(path: Path, text: str) -> int:
    return next(number for number, line in enumerate(path.read_text().splitlines(), 1) if text in line)


# A raw loop with a GradScaler and gradient accumulation (2 backward calls per optimizer step).
SCALED_ACCUMULATING_LOOP = """
import torch
from torch import nn

torch.manual_seed(0)
model = nn.Linear(4, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
inputs, targets = torch.randn(8, 4), torch.randn(8, 1)
for i in range(100):
    batch = slice(i % 4 * 2, i % 4 * 2 + 2)
    loss = nn.functional.mse_loss(model(inputs[batch]), targets[batch]) / 2
    print("LOSS", repr(loss.item()))
    scaler.scale(loss).backward()
    if i % 2 == 1:
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad()
"""


def write(folder: Path, name: str, source: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(source).lstrip(), encoding="utf-8")
    return path


def files_under(folder: Path) -> set[Path]:
    return {path.relative_to(folder) for path in folder.rglob("*") if "__pycache__" not in path.parts}


@pytest.fixture
def cli():
    """A typer app that registers verify_command the way cli.py does, beside a second command
    (with one command typer would make the app the command itself)."""
    app = typer.Typer()
    app.command("verify", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(
        verify_command
    )
    app.command("other")(lambda: None)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, ["verify", *map(str, args)])


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """A scripts folder and a separate working directory, so that writes into either show."""
    scripts, cwd = tmp_path / "scripts", tmp_path / "cwd"
    scripts.mkdir()
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return scripts, cwd


# ---------------------------------------------------------------------------------------------
# Runs


@pytest.mark.slow
def test_lightning_script_passes_and_writes_nothing(workspace):
    scripts, cwd = workspace
    script = write(scripts, "train.py", LIGHTNING_SCRIPT)
    before = files_under(scripts)

    result = verify(script, steps=2, summary=True, script_args=["--epochs", "3"])

    assert result.ok, result
    assert result.stages == ("train", "validate", "test")
    assert len(result.losses) == 2 and all(math.isfinite(loss) for loss in result.losses)
    assert result.error is None
    assert "In sizes" in result.summary and "[8, 4]" in result.summary  # taken from the first batch
    assert files_under(scripts) == before  # no lightning_logs/, no checkpoints/
    assert files_under(cwd) == set()


@pytest.mark.slow
def test_script_that_raises_fails_at_its_line(tmp_path):
    script = write(tmp_path, "broken.py", RAISING_SCRIPT)
    line = next(number for number, text in enumerate(script.read_text().splitlines(), 1) if "boom" in text)

    result = verify(script)

    assert not result.ok
    assert result.error.type == "RuntimeError"
    assert (result.error.file, result.error.line) == (str(script), line)
    assert "boom in training_step" in result.message
    assert any(f'"{script}", line {line}' in text for text in result.error.traceback)
    assert "harness.py" not in "\n".join(result.error.traceback[:3])  # starts in the user's file


@pytest.mark.slow
def test_parity_passes_for_an_equivalent_lightning_script(tmp_path):
    original = write(tmp_path, "train.py", RAW_LOOP)
    converted = write(tmp_path, "train_lightning.py", LIGHTNING_EQUIVALENT.replace("LEARNING_RATE", "0.1"))

    result = verify(converted, original=original, steps=3)

    assert result.ok, result
    assert len(result.losses) == 3
    assert result.losses == result.original_losses
    assert result.max_abs_diff == 0.0
    assert result.stages == ("train",)
    assert files_under(tmp_path) == {Path("train.py"), Path("train_lightning.py")}


@pytest.mark.slow
def test_parity_fails_when_the_converted_script_raises_after_training(tmp_path):
    original = write(tmp_path, "train.py", RAW_LOOP)
    converted = write(
        tmp_path,
        "train_lightning.py",
        after_fit("""
        print("trained")
        torch.save(model.state_dict(), checkpoint_path)  # a name the conversion lost
    """),
    )
    line = line_of(converted, "checkpoint_path")

    result = verify(converted, original=original, steps=3)

    assert not result.ok
    assert result.message == (
        "train_lightning.py matches train.py (3 losses, max abs diff 0) but raised NameError after training "
        f"at train_lightning.py:{line}: name 'checkpoint_path' is not defined"
    )
    assert result.losses == result.original_losses and len(result.losses) == 3
    assert (result.error.file, result.error.line) == (str(converted), line)
    assert files_under(tmp_path) == {Path("train.py"), Path("train_lightning.py")}


@pytest.mark.slow
def test_cli_names_the_line_that_fails_after_training(tmp_path, cli):
    original = write(tmp_path, "train.py", RAW_LOOP)
    converted = write(
        tmp_path,
        "train_lightning.py",
        after_fit("""
        import sys
        sys.exit(3)
    """),
    )

    outcome = cli(converted, "--original", original, "--steps", "2")

    assert outcome.exit_code == 1, outcome.output
    assert outcome.output.splitlines()[0] == (
        "FAIL train_lightning.py matches train.py (2 losses, max abs diff 0) but exited with status 3 "
        f"after training at train_lightning.py:{line_of(converted, 'sys.exit')}"
    )


@pytest.mark.slow
def test_parity_runs_the_code_after_fit_with_a_few_test_batches(tmp_path):
    original = write(tmp_path, "train.py", RAW_LOOP)
    # a test set of 64 batches, tested after fit: verify runs 3 of them, and the lines after it
    converted = write(
        tmp_path,
        "train_lightning.py",
        after_fit("""
        test_loader = DataLoader(TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,))), batch_size=1)
        lit = trainer.lightning_module
        trainer.test(lit, dataloaders=test_loader)
        assert lit.test_batches == 3, lit.test_batches
        second = L.Trainer(max_epochs=100)  # a later Trainer is capped at 3 steps too
        second.fit(LitNet(model), train_dataloaders=loader)
        assert second.global_step == 3, second.global_step
        print("done")
    """).replace(TEST_STEP_BEFORE, TEST_STEP_AFTER),
    )

    result = verify(converted, original=original, steps=3)

    assert result.ok, result
    assert result.message == "train_lightning.py matches train.py (3 losses, max abs diff 0)"
    assert result.stages == ("train", "test")
    assert result.losses == result.original_losses and len(result.losses) == 3  # not the second fit's


@pytest.mark.slow
def test_parity_ends_fit_as_early_stopping_does_validating_before_the_epoch_ends(tmp_path):
    """max_steps=K alone would end the epoch mid-way, with no validation before on_train_epoch_end."""
    original = write(tmp_path, "train.py", RAW_LOOP)
    converted = write(
        tmp_path,
        "train_lightning.py",
        LIGHTNING_EQUIVALENT.replace("LEARNING_RATE", "0.1")
        .replace(
            "    def configure_optimizers(self):\n",
            """    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.val_loss = nn.functional.cross_entropy(self.model(x), y).item()

    def on_train_epoch_end(self):
        print("val loss", self.val_loss)

    def configure_optimizers(self):
""",
        )
        .replace("train_dataloaders=loader)", "train_dataloaders=loader, val_dataloaders=loader)"),
    )

    result = verify(converted, original=original, steps=2)  # 2 of the 4 batches of the first epoch

    assert result.ok, result
    assert result.stages == ("train", "validate")
    assert result.losses == result.original_losses and len(result.losses) == 2


@pytest.mark.slow
def test_parity_stops_a_raw_loop_left_after_fit_and_says_where(tmp_path):
    original = write(tmp_path, "train.py", RAW_LOOP)
    converted = write(
        tmp_path,
        "train_lightning.py",
        after_fit("""
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for epoch in range(1000):
            for x, y in loader:
                nn.functional.cross_entropy(model(x), y).backward()
                optimizer.step()
    """),
    )

    result = verify(converted, original=original, steps=2)

    assert result.ok, result
    assert result.losses == result.original_losses and len(result.losses) == 2
    assert result.message == (
        "train_lightning.py matches train.py (2 losses, max abs diff 0); stopped at a raw "
        f"optimizer step after training, at train_lightning.py:{line_of(converted, 'optimizer.step()')}"
    )


@pytest.mark.slow
def test_parity_stops_slow_code_after_training_on_a_budget(tmp_path, monkeypatch):
    from loopshift.verify import runner

    monkeypatch.setattr(runner, "AFTER_TRAINING_SECONDS", 2.0)  # (or a quarter of the timeout)
    original = write(tmp_path, "train.py", RAW_LOOP)
    converted = write(
        tmp_path,
        "train_lightning.py",
        after_fit("""
        import time
        time.sleep(600)
    """),
    )

    result = verify(converted, original=original, steps=1)

    assert result.ok, result
    assert result.message.endswith(
        f"; stopped 2 s after training (its time budget), at train_lightning.py:{line_of(converted, 'sleep')}"
    )
    assert result.seconds < 120


@pytest.mark.slow
def test_cli_parity_fails_for_another_learning_rate(tmp_path, cli):
    original = write(tmp_path, "train.py", RAW_LOOP)
    converted = write(tmp_path, "train_lightning.py", LIGHTNING_EQUIVALENT.replace("LEARNING_RATE", "0.2"))

    outcome = cli(converted, "--original", original, "--steps", "3")

    assert outcome.exit_code == 1, outcome.output
    assert outcome.output.startswith("FAIL train_lightning.py and train.py differ from loss 2 on")
    rows = [line.split() for line in outcome.output.splitlines() if line.strip()[:1].isdigit()]
    assert [row[0] for row in rows] == ["1", "2", "3"]
    assert rows[0][1] == rows[0][2] and "<-" not in rows[0]  # first loss is before any step
    assert rows[1][-1] == "<-"


@pytest.mark.slow
def test_cli_passes_script_args_through(workspace, cli):
    scripts, _ = workspace
    script = write(scripts, "train.py", LIGHTNING_SCRIPT)  # argparse: --epochs is required

    outcome = cli(script, "--", "--epochs", "1")

    assert outcome.exit_code == 0, outcome.output
    assert outcome.output.startswith("PASS train.py trains")
    assert "stages  train, validate, test" in outcome.output


@pytest.mark.slow
def test_cli_fails_a_script_that_never_builds_a_trainer(tmp_path, cli):
    script = write(tmp_path, "train.py", RAW_LOOP)

    outcome = cli(script, "--steps", "2")

    assert outcome.exit_code == 1, outcome.output
    assert outcome.output.startswith("FAIL train.py never builds a Trainer")
    assert "losses  " in outcome.output  # its raw loop was stopped after 2 steps


def test_cli_missing_script_is_a_usage_error(tmp_path, cli):
    outcome = cli(tmp_path / "nope.py")

    assert outcome.exit_code == 2
    assert outcome.output.strip() == f"{tmp_path / 'nope.py'}: error: no such file"


NOTEBOOK_JSON = b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}\n'


@pytest.mark.parametrize(
    "name, content, error",
    [
        (
            "py2.py",
            b"import torch\nprint 'hello'\n",
            "py2.py:2:1: error: syntax error: "
            "Missing parentheses in call to 'print'. Did you mean print(...)?",
        ),
        (
            "py2_except.py",
            b"try:\n    pass\nexcept ValueError, e:\n    pass\n",
            "py2_except.py:3:8: error: syntax error: multiple exception types must be parenthesized",
        ),
        ("unclosed.py", b"x = (\n", "unclosed.py:1:5: error: syntax error: '(' was never closed"),
        (
            "latin1.py",
            b"# caf\xe9\nimport torch\n",
            "latin1.py:1: error: not valid utf-8 text (invalid continuation byte)",
        ),
        (
            "train.ipynb",
            NOTEBOOK_JSON,
            "train.ipynb: error: verify runs Python scripts, not notebooks; "
            "`jupyter nbconvert --to script train.ipynb` writes the notebook's code as one",
        ),
        (
            "saved_notebook.py",
            NOTEBOOK_JSON,
            "saved_notebook.py: error: holds a Jupyter notebook's JSON, not Python code",
        ),
    ],
)
def test_cli_input_that_is_no_python_script_is_a_usage_error(
    tmp_path, monkeypatch, capsys, name, content, error
):
    from loopshift.cli import main
    from loopshift.verify import runner

    monkeypatch.setattr(runner, "run_harness", lambda *args, **kwargs: pytest.fail("started a run"))
    monkeypatch.chdir(tmp_path)
    Path(name).write_bytes(content)
    Path("good.py").write_text("print('fine')\n")

    for arguments in ([name], ["good.py", "--original", name], [name, "--original", "good.py"]):
        assert main(["verify", *arguments]) == 2
        captured = capsys.readouterr()
        assert (captured.out, captured.err) == ("", error + "\n")


def test_timeout_kills_the_run_and_fails(tmp_path):
    script = write(tmp_path, "hangs.py", "import time\ntime.sleep(60)\n")

    result = verify(script, timeout=1.0)

    assert not result.ok
    assert result.message == "hangs.py did not finish within the 1 s timeout (killed)"


def test_interpreter_without_torch_gets_an_install_hint(tmp_path):
    python = getattr(sys, "_base_executable", None)
    if not python or subprocess.run([python, "-c", "import torch"], capture_output=True).returncode == 0:
        pytest.skip("no interpreter without torch at hand")
    script = write(tmp_path, "train.py", RAW_LOOP)

    result = verify(script, python=python)

    assert not result.ok
    assert "torch is not installed" in result.message and "pip install torch" in result.message


@pytest.mark.slow
def test_ddp_with_two_cpu_processes(workspace):
    scripts, cwd = workspace
    script = write(scripts, "train.py", LIGHTNING_SCRIPT)

    result = verify(script, devices=2, script_args=["--epochs", "1"])

    assert result.ok, result
    assert result.stages == ("train", "validate", "test")
    assert files_under(cwd) == set()


# ---------------------------------------------------------------------------------------------
# The harness on its own


@pytest.mark.slow
def test_harness_records_unscaled_losses_per_backward_and_stops_after_k_steps(tmp_path):
    script = write(tmp_path, "scaled.py", SCALED_ACCUMULATING_LOOP)
    result_file = tmp_path / "result.json"
    command = [
        sys.executable,
        harness.HARNESS_FILE,
        "--result",
        str(result_file),
        "--parity",
        "--steps",
        "2",
        "--",
        str(script),
    ]

    completed = subprocess.run(
        command, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1")
    )

    result = json.loads(result_file.read_text())
    printed = [float(line.split()[1]) for line in completed.stdout.splitlines() if line.startswith("LOSS")]
    assert result["ok"] and result["steps"] == 2 and not result["trainer_built"]
    assert result["losses"] == printed and len(printed) == 4  # 2 steps x 2 accumulated backward calls


def test_harness_parses_its_options_and_the_script_args():
    options = harness.parse_args(
        ["--result", "r.json", "--steps", "3", "--parity", "--", "train.py", "--lr", "1"]
    )

    assert (options.result, options.steps, options.parity, options.devices) == ("r.json", 3, True, 1)
    assert options.script == os.path.abspath("train.py")
    assert options.script_args == ["--lr", "1"]


def test_forced_trainer_kwargs_smoke_run():
    options = harness.Options(result="r.json", script="s.py", script_args=[], steps=2)

    kwargs = harness.forced_trainer_kwargs(
        {"max_epochs": 10, "accelerator": "gpu", "devices": 4, "strategy": "ddp", "gradient_clip_val": 1.0},
        options,
        "/tmp/root",
    )

    assert kwargs == {
        "max_epochs": 10,
        "gradient_clip_val": 1.0,
        "fast_dev_run": 2,
        "accelerator": "cpu",
        "devices": 1,
        "num_nodes": 1,
        "strategy": "auto",
        "default_root_dir": "/tmp/root",
    }


def test_forced_trainer_kwargs_parity_and_ddp():
    parity = harness.Options(result="r.json", script="s.py", script_args=[], steps=3, parity=True)
    ddp = harness.Options(result="r.json", script="s.py", script_args=[], devices=2)

    parity_kwargs = harness.forced_trainer_kwargs({"fast_dev_run": True}, parity, "/tmp/root")
    ddp_kwargs = harness.forced_trainer_kwargs({}, ddp, "/tmp/root")

    assert "fast_dev_run" not in parity_kwargs
    assert (parity_kwargs["max_steps"], parity_kwargs["num_sanity_val_steps"]) == (3, 0)
    assert "limit_val_batches" not in parity_kwargs  # validation draws from the RNG as the original's did
    assert (ddp_kwargs["accelerator"], ddp_kwargs["devices"], ddp_kwargs["strategy"]) == ("cpu", 2, "ddp")


# ---------------------------------------------------------------------------------------------
# Rendering


def test_render_failure_shows_the_users_file_and_line():
    error = ScriptError(
        "ZeroDivisionError",
        "division by zero",
        "/w/train.py",
        12,
        ("Traceback (most recent call last):", '  File "/w/train.py", line 12, in <module>'),
    )
    result = VerifyResult(
        ok=False,
        stages=(),
        losses=(),
        seconds=1.0,
        error=error,
        message="train.py raised ZeroDivisionError: division by zero",
    )

    text = render_result(result)

    assert text.splitlines()[0] == "FAIL train.py raised ZeroDivisionError: division by zero"
    assert "  at /w/train.py:12" in text
    assert '    File "/w/train.py", line 12, in <module>' in text


def test_render_parity_table_marks_rows_beyond_tolerance_and_missing_rows():
    result = VerifyResult(
        ok=False,
        stages=("train",),
        losses=(1.0, 2.5),
        seconds=1.0,
        error=None,
        original_losses=(1.0, 2.0, 3.0),
        max_abs_diff=0.5,
        message="differ",
    )

    rows = [line.split() for line in render_result(result).splitlines() if line.strip()[:1].isdigit()]

    assert rows == [["1", "1", "1", "0"], ["2", "2", "2.5", "0.5", "<-"], ["3", "3", "-", "<-"]]
