"""`verify()`: run a script under the harness in a subprocess and judge what it did.

This side never imports torch: the harness does, in the user's interpreter.
"""

from __future__ import annotations

import ast
import contextlib
import errno
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from loopshift.source import InputError, read_source

# Run as a file, not `-m loopshift.verify.harness`: the user's interpreter then needs neither
# loopshift nor its dependencies, and no folder of ours lands on the script's sys.path.
HARNESS = Path(__file__).with_name("harness.py")
OUTPUT_TAIL_CHARS = 8000
# In a parity run the converted script goes on after its K-th optimizer step, to its end (the code
# after training must not fail), for at most this long (or a quarter of --timeout, if less).
AFTER_TRAINING_SECONDS = 60.0

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class ScriptError:
    """An exception the script raised, located in the user's file."""

    type: str
    message: str
    file: str | None = None
    line: int | None = None
    traceback: tuple[str, ...] = ()

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}: " if self.file else ""
        return f"{where}{self.type}: {self.message}"


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    stages: tuple[str, ...]
    losses: tuple[float, ...]
    seconds: float
    error: ScriptError | None
    original_losses: tuple[float, ...] | None = None
    max_abs_diff: float | None = None
    message: str = ""
    summary: str = ""
    output: str = ""  # the end of what the script printed, when a failure has no useful traceback


@dataclass(frozen=True)
class HarnessRun:
    """What one harness subprocess reported (or that it reported nothing)."""

    script: Path
    stages: tuple[str, ...] = ()
    losses: tuple[float, ...] = ()
    steps: int = 0
    trainer_built: bool = False
    fabric_built: bool = False
    error: ScriptError | None = None
    summary: str = ""
    output: str = ""
    timed_out: bool = False
    no_result: bool = False
    exit_status: int | None = None
    trained: bool = False  # it ran its K optimizer steps (the parity window), or a Trainer.fit returned
    stopped: str | None = None  # why and where a parity run was stopped after training, if it was


def verify(
    script: PathLike,
    *,
    original: PathLike | None = None,
    steps: int = 1,
    python: str | None = None,
    devices: int = 1,
    timeout: float = 300.0,
    seed: int = 0,
    rtol: float = 1e-4,
    atol: float = 0.0,
    script_args: Sequence[str] = (),
    summary: bool = False,
) -> VerifyResult:
    """Run SCRIPT with every Trainer forced to `fast_dev_run=steps`; with `original`, run both
    for `steps` optimizer steps from the same seed and compare the losses passed to backward,
    then let SCRIPT run on after its Trainer's fit to its end (an error there fails).

    Raises FileNotFoundError or ValueError for bad arguments and InputError (a one-line
    `path[:line[:col]]: error: reason`) for a file that is no Python script (a syntax error,
    undecodable bytes, Python 2, a notebook), before anything runs; everything the scripts do is
    reported in the result.
    """
    for given in (script, original):
        if given is not None:
            existing_file(given)
    for given in (original, script):  # named as the user named them
        if given is not None:
            check_python_script(Path(given))
    script = existing_file(script)
    original = existing_file(original) if original is not None else None
    python = interpreter(python)
    if steps < 1 or devices < 1:
        raise ValueError("--steps and --devices must be at least 1")
    if original is not None and devices > 1:
        raise ValueError("--devices cannot be combined with --original: parity runs on one CPU device")

    started = time.perf_counter()
    launch: dict[str, Any] = dict(
        python=python,
        steps=steps,
        devices=devices,
        seed=seed,
        timeout=timeout,
        script_args=list(script_args),
        summary=summary,
    )
    if original is None:
        run = run_harness(script, parity=False, **launch)
        return smoke_result(run, time.perf_counter() - started, timeout)
    with ThreadPoolExecutor(max_workers=2) as pool:  # the two runs are independent processes
        original_future = pool.submit(run_harness, original, parity=True, **launch)
        converted_future = pool.submit(run_harness, script, parity=True, **launch)
        original_run, converted_run = original_future.result(), converted_future.result()
    return parity_result(original_run, converted_run, time.perf_counter() - started, timeout, rtol, atol)


def existing_file(path: PathLike) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(errno.ENOENT, "no such file", str(path))
    return path.resolve()


def check_python_script(path: Path) -> None:
    """InputError for what Python would not run as a script: caught here, it is a one-line usage
    error (as convert and lint give), not a failed run. Parsing with this interpreter's `ast` is cheap."""
    if path.suffix == ".ipynb":
        raise InputError(
            f"{path}: error: verify runs Python scripts, not notebooks; `jupyter nbconvert "
            f"--to script {path.name}` writes the notebook's code as one"
        )
    source = read_source(path)  # InputError for undecodable bytes
    if looks_like_a_notebook(source):
        raise InputError(f"{path}: error: holds a Jupyter notebook's JSON, not Python code")
    try:
        compile(source, str(path), "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
    except SyntaxError as error:  # Python 2 code too: print "x", except E, e
        place = (
            f"{error.lineno}:{error.offset}:" if error.offset else f"{error.lineno}:" if error.lineno else ""
        )
        raise InputError(f"{path}:{place} error: syntax error: {error.msg}") from None
    except ValueError as error:  # null bytes
        raise InputError(f"{path}: error: {error}") from None


def looks_like_a_notebook(source: str) -> bool:
    """A notebook's JSON saved as .py parses as a dict expression, then fails on `null`."""
    if not source.lstrip().startswith("{"):
        return False
    try:
        data = json.loads(source)
    except ValueError:
        return False
    return isinstance(data, dict) and "cells" in data


def interpreter(python: str | None) -> str:
    if python is None:
        return sys.executable
    found = shutil.which(python)
    if found is None:
        raise FileNotFoundError(errno.ENOENT, "no such interpreter", python)
    return found


# ---------------------------------------------------------------------------------------------
# Running the harness


def run_harness(
    script: Path,
    *,
    python: str,
    parity: bool,
    steps: int,
    devices: int,
    seed: int,
    timeout: float,
    script_args: list[str],
    summary: bool,
) -> HarnessRun:
    with tempfile.TemporaryDirectory(prefix="loopshift-verify-") as workdir:
        result_file = Path(workdir) / "result.json"
        command = [
            python,
            str(HARNESS),
            "--result",
            str(result_file),
            "--root-dir",
            str(Path(workdir) / "root"),  # Lightning's default_root_dir
            "--steps",
            str(steps),
            "--devices",
            str(devices),
            "--seed",
            str(seed),
            "--after-training-seconds",
            str(min(AFTER_TRAINING_SECONDS, timeout / 4)),
            *(["--parity"] if parity else []),
            *(["--summary"] if summary else []),
            "--",
            str(script),
            *script_args,
        ]
        exit_status, output, timed_out = run_process(command, timeout)
        if timed_out:
            return HarnessRun(script, output=output, timed_out=True)
        if not result_file.is_file():
            return HarnessRun(script, output=output, no_result=True, exit_status=exit_status)
        return harness_run_from_json(script, result_file, output)


def run_process(command: list[str], timeout: float) -> tuple[int | None, str, bool]:
    """Returns (exit status, output tail, timed out)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,  # its own process group, so a timeout can kill DDP ranks and workers too
    )
    try:
        output, _ = process.communicate(timeout=timeout)
        return process.returncode, output[-OUTPUT_TAIL_CHARS:], False
    except subprocess.TimeoutExpired:
        kill_process_group(process.pid)
        output, _ = process.communicate()
        return None, output[-OUTPUT_TAIL_CHARS:], True


def kill_process_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def harness_run_from_json(script: Path, result_file: Path, output: str) -> HarnessRun:
    data = json.loads(result_file.read_text(encoding="utf-8"))
    error = script_error(data["error"])
    for rank_file in sorted(result_file.parent.glob(result_file.name + ".rank*")):
        rank_data = json.loads(rank_file.read_text(encoding="utf-8"))
        rank_error = script_error(rank_data["error"])
        if error is None and rank_error is not None:
            rank = rank_file.name.rsplit(".rank", 1)[1]
            error = ScriptError(
                rank_error.type,
                f"(DDP rank {rank}) {rank_error.message}",
                rank_error.file,
                rank_error.line,
                rank_error.traceback,
            )
    return HarnessRun(
        script=script,
        stages=tuple(data["stages"]),
        losses=tuple(float(loss) for loss in data["losses"]),
        steps=data["steps"],
        trainer_built=data["trainer_built"],
        fabric_built=data.get("fabric_built", False),
        error=error,
        summary=data["summary"] or "",
        output=output,
        trained=data.get("window_closed", False) or data.get("fit_returned", False),
        stopped=stop_note(script, data.get("stopped")),
    )


def stop_note(script: Path, stopped: dict[str, Any] | None) -> str | None:
    if stopped is None:
        return None
    return f"stopped {stopped['reason']}" + (
        f", at {where(script, stopped['file'], stopped['line'])}" if stopped["file"] else ""
    )


def where(script: Path, file: str | None, line: int | None) -> str:
    """`name.py:57` for the script itself, the full path for another file."""
    if file is None:
        return "an unknown place"
    shown = script.name if Path(file) == script else file
    return f"{shown}:{line}" if line is not None else shown


def script_error(data: dict[str, Any] | None) -> ScriptError | None:
    if data is None:
        return None
    return ScriptError(data["type"], data["message"], data["file"], data["line"], tuple(data["traceback"]))


# ---------------------------------------------------------------------------------------------
# Judging


def run_failure(run: HarnessRun, timeout: float) -> str | None:
    """Why the run itself failed (crashed, raised, hung), or None."""
    name = run.script.name
    if run.timed_out:
        return f"{name} did not finish within the {timeout:g} s timeout (killed)"
    if run.no_result:
        return f"{name}: the verify harness reported nothing (exit status {run.exit_status})"
    if run.error is not None and run.error.type == "SystemExit":
        return f"{name} {run.error.message}"
    if run.error is not None:
        return f"{name} raised {run.error.type}: {run.error.message}"
    return None


def training_failure(run: HarnessRun) -> str | None:
    """Why a run that was meant to train with a Lightning Trainer (or Fabric) did not, or None."""
    name = run.script.name
    if not run.trainer_built and not run.fabric_built:
        return f"{name} never builds a Trainer (or a Fabric)"
    if "train" not in run.stages:
        return f"{name} builds a {'Trainer' if run.trainer_built else 'Fabric'} but runs no training step"
    for index, loss in enumerate(run.losses, start=1):
        if not math.isfinite(loss):
            return f"{name}: loss {index} is {loss}"
    return None


def smoke_result(run: HarnessRun, seconds: float, timeout: float) -> VerifyResult:
    failure = run_failure(run, timeout) or training_failure(run)
    return VerifyResult(
        ok=failure is None,
        stages=run.stages,
        losses=run.losses,
        seconds=seconds,
        error=run.error,
        message=failure or f"{run.script.name} trains",
        summary=run.summary,
        output=output_worth_showing(run, timeout),
    )


def parity_result(
    original: HarnessRun, converted: HarnessRun, seconds: float, timeout: float, rtol: float, atol: float
) -> VerifyResult:
    max_abs_diff = max_difference(original.losses, converted.losses)
    # an error after training: the losses are compared first, the error fails the run after them
    failed_after_training = converted.error is not None and converted.trained
    matches = (
        f"{converted.script.name} matches {original.script.name} "
        f"({plural(len(converted.losses), 'loss', 'losses')}, max abs diff {max_abs_diff:.3g})"
    )
    failure = (
        run_failure(original, timeout)
        or (None if original.losses else f"{original.script.name} never calls backward")
        or (None if failed_after_training else run_failure(converted, timeout))
        or training_failure(converted)
        or loss_mismatch(original, converted, rtol, atol)
        or (f"{matches} but {failure_after_training(converted)}" if failed_after_training else None)
    )
    message = failure or (f"{matches}; {converted.stopped}" if converted.stopped else matches)
    return VerifyResult(
        ok=failure is None,
        stages=converted.stages,
        losses=converted.losses,
        seconds=seconds,
        error=original.error or converted.error,
        original_losses=original.losses,
        max_abs_diff=max_abs_diff,
        message=message,
        summary=converted.summary,
        output=output_worth_showing(original, timeout) or output_worth_showing(converted, timeout),
    )


def failure_after_training(run: HarnessRun) -> str:
    """`raised NameError after training at x_lightning.py:57: name 'f' is not defined`."""
    error = run.error
    assert error is not None, "called for a run that failed after training"
    at = f" at {where(run.script, error.file, error.line)}" if error.file else ""
    if error.type == "SystemExit":
        return f"{error.message} after training{at}"
    return f"raised {error.type} after training{at}: {error.message}"


def output_worth_showing(run: HarnessRun, timeout: float) -> str:
    """The script's output when it is the only clue: the run hung, crashed or called sys.exit."""
    if run_failure(run, timeout) is None:
        return ""
    if run.error is not None and run.error.type != "SystemExit":
        return ""  # the traceback says it better
    return run.output


def loss_mismatch(original: HarnessRun, converted: HarnessRun, rtol: float, atol: float) -> str | None:
    first = first_mismatch(original.losses, converted.losses, rtol, atol)
    if first is not None:
        return (
            f"{converted.script.name} and {original.script.name} differ from loss {first + 1} on "
            f"(max abs diff {max_difference(original.losses, converted.losses):.3g}; "
            f"rtol {rtol:g}, atol {atol:g})"
        )
    if len(original.losses) != len(converted.losses):
        return (
            f"{original.script.name} passed {plural(len(original.losses), 'loss', 'losses')} to backward, "
            f"{converted.script.name} {len(converted.losses)}"
        )
    return None


def losses_close(expected: float, actual: float, rtol: float, atol: float) -> bool:
    if math.isnan(expected) or math.isnan(actual):
        return math.isnan(expected) and math.isnan(actual)
    return abs(actual - expected) <= atol + rtol * abs(expected)


def first_mismatch(
    expected: Sequence[float], actual: Sequence[float], rtol: float, atol: float
) -> int | None:
    for index, (want, got) in enumerate(zip(expected, actual)):
        if not losses_close(want, got, rtol, atol):
            return index
    return None


def max_difference(expected: Sequence[float], actual: Sequence[float]) -> float:
    return max((abs(got - want) for want, got in zip(expected, actual)), default=0.0)


def plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"
