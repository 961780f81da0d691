"""Runs a user's training script inside the `loopshift verify` subprocess.

The runner starts it with the user's interpreter, either as a file (`python .../harness.py`) or as
`python -m loopshift.verify.harness`, with `[options] -- SCRIPT [ARGS...]`. It needs only the
standard library and torch: it imports torch in `main()`, and patches Lightning's `Trainer` only
when the script itself imports Lightning. The outcome goes to the JSON file named by `--result`:

    {ok, stages, losses, steps, trainer_built, fabric_built, seconds, error, summary,
     window_closed, fit_returned, stopped}

Parity (`--parity`) compares the losses of the first K optimizer steps (the window). A raw loop is
stopped at its K-th step (StopAfterSteps). A Trainer's `fit` is not: it stops there as an early
stop does (validation on that batch, then the epoch's end; `max_steps=K` too), and the script runs
on to its end (its `trainer.test`, prints, saves), so that an error after training
fails verify too; the losses after the window are not recorded, later fits get `max_steps=K` and
evaluations after the window a few batches, a raw optimizer step after the window still stops the
run, and so does a budget of `--after-training-seconds` counted from the K-th step.

A script converted to Lightning Fabric keeps its own loop: the harness forces its `Fabric` onto the
CPU (N processes under DDP) and stops it after K optimizer steps, as it stops the original (so the
code after its loop does not run).
"""

from __future__ import annotations

import argparse
import functools
import importlib
import importlib.abc
import inspect
import json
import os
import random
import runpy
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from types import ModuleType
from typing import Any

# Modules whose import means "patch this Trainer", mapped to the package their helpers live in.
TRAINER_MODULES = {
    "lightning.pytorch.trainer.trainer": "lightning.pytorch",
    "pytorch_lightning.trainer.trainer": "pytorch_lightning",
}
FABRIC_MODULES = {
    "lightning.fabric.fabric": "lightning.fabric",
    "lightning_fabric.fabric": "lightning_fabric",
}
HARNESS_FILE = os.path.abspath(__file__)


@dataclass
class Options:
    result: str
    script: str
    script_args: list[str]
    steps: int = 1
    devices: int = 1
    seed: int = 0
    parity: bool = False
    summary: bool = False
    root_dir: str | None = None
    after_training_seconds: float = 60.0


@dataclass
class Record:
    """What the script did, filled in by the hooks while it runs."""

    stages: list[str] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    steps: int = 0
    trainer_built: bool = False
    fabric_built: bool = False
    summary: str | None = None
    window_closed: bool = False  # parity: the K-th optimizer step has run; later losses are not compared
    fit_returned: bool = False  # a Trainer.fit has returned
    # parity: where the run was stopped after the window (a raw optimizer step, the time budget), and why
    stopped: dict | None = None
    stopping: str | None = None

    def saw_stage(self, stage: str) -> None:
        if stage not in self.stages:
            self.stages.append(stage)

    def saw_backward(self, tensor: Any) -> None:
        if (
            tensor.numel() != 1 or self.window_closed
        ):  # a non-scalar backward (with explicit gradients) is no loss
            return
        unscaled = getattr(tensor, "_loopshift_unscaled", None)
        self.losses.append(unscaled if unscaled is not None else float(tensor.detach()))


class StopAfterSteps(BaseException):
    """Ends the script after its K-th optimizer step (see count_optimizer_steps); a BaseException
    so that the script's own `except Exception` blocks do not swallow it."""


class AfterTrainingBudgetSpent(StopAfterSteps):
    """Ends a parity run whose code after the K-th step runs longer than --after-training-seconds."""


def parse_args(argv: list[str]) -> Options:
    if "--" not in argv:
        raise SystemExit("usage: harness [options] -- SCRIPT [ARGS...]")
    split = argv.index("--")
    parser = argparse.ArgumentParser(prog="loopshift.verify.harness")
    parser.add_argument("--result", required=True)
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--parity", action="store_true")
    parser.add_argument("--summary", action="store_true")
    parser.add_argument("--root-dir", dest="root_dir")
    parser.add_argument("--after-training-seconds", dest="after_training_seconds", type=float, default=60.0)
    namespace = parser.parse_args(argv[:split])
    script, *script_args = argv[split + 1 :]
    return Options(script=os.path.abspath(script), script_args=script_args, **vars(namespace))


def forced_trainer_kwargs(user_kwargs: dict[str, Any], options: Options, root_dir: str) -> dict[str, Any]:
    """The user's Trainer arguments with what verify must control put on top of them."""
    kwargs = dict(user_kwargs)
    # a DDP script keeps its strategy on one process: Lightning's distributed sampler then orders the
    # data as the original's DistributedSampler did
    keep_ddp = options.parity and user_kwargs.get("strategy") == "ddp"
    kwargs.update(
        accelerator="cpu",
        devices=1,
        num_nodes=1,
        strategy="ddp" if keep_ddp else "auto",
        default_root_dir=root_dir,
    )
    if options.parity:
        # Compare the first K optimizer steps (IDIOMS.md, Equivalence). Validation still runs where
        # the script has it: iterating a DataLoader draws from the global generator, and the
        # original's evaluation drew it too.
        kwargs.pop("fast_dev_run", None)
        kwargs.update(max_steps=options.steps, num_sanity_val_steps=0)
    else:
        kwargs["fast_dev_run"] = options.steps
        if options.devices > 1:
            kwargs.update(devices=options.devices, strategy="ddp")
    return kwargs


def as_list(callbacks: Any) -> list[Any]:
    if callbacks is None:
        return []
    if isinstance(callbacks, (list, tuple)):
        return list(callbacks)
    return [callbacks]


# ---------------------------------------------------------------------------------------------
# torch hooks: losses, optimizer steps, seeding


def seed_everything(torch: ModuleType, seed: int) -> None:
    random.seed(seed)
    try:
        import numpy
    except ImportError:
        pass
    else:
        numpy.random.seed(seed)
    torch.manual_seed(seed)


def record_losses(torch: ModuleType, record: Record) -> None:
    """Record the value of every loss passed to backward, unscaled when a GradScaler scaled it."""
    tensor_backward = torch.Tensor.backward
    autograd_backward = torch.autograd.backward
    inside_tensor_backward = [False]  # Tensor.backward calls torch.autograd.backward: count once

    @functools.wraps(tensor_backward)
    def backward(self, *args, **kwargs):
        record.saw_backward(self)
        inside_tensor_backward[0] = True
        try:
            return tensor_backward(self, *args, **kwargs)
        finally:
            inside_tensor_backward[0] = False

    @functools.wraps(autograd_backward)
    def functional_backward(tensors, *args, **kwargs):
        if not inside_tensor_backward[0]:
            for tensor in [tensors] if isinstance(tensors, torch.Tensor) else tensors:
                record.saw_backward(tensor)
        return autograd_backward(tensors, *args, **kwargs)

    torch.Tensor.backward = backward
    torch.autograd.backward = functional_backward
    remember_unscaled_losses(torch)


def remember_unscaled_losses(torch: ModuleType) -> None:
    scaler_classes = [torch.amp.GradScaler]
    cuda_scaler = getattr(getattr(torch.cuda, "amp", None), "GradScaler", None)
    if cuda_scaler is not None and "scale" in vars(cuda_scaler):
        scaler_classes.append(cuda_scaler)
    for scaler_class in scaler_classes:
        original_scale = scaler_class.scale

        def scale(self, outputs, _original_scale=original_scale):
            scaled = _original_scale(self, outputs)
            if (
                isinstance(outputs, torch.Tensor)
                and isinstance(scaled, torch.Tensor)
                and outputs.numel() == 1
            ):
                scaled._loopshift_unscaled = float(outputs.detach())
            return scaled

        scaler_class.scale = functools.wraps(original_scale)(scale)


def count_optimizer_steps(torch: ModuleType, record: Record, options: Options) -> None:
    from torch.optim.optimizer import register_optimizer_step_post_hook

    def after_step(optimizer, args, kwargs):
        record.steps += 1
        if record.trainer_built or record.fabric_built:
            record.saw_stage(
                "train"
            )  # a Trainer's or Fabric's optimizer stepped (stopping skips on_train_batch_end)
        if record.steps < options.steps:
            return
        if options.parity:
            # Parity compares the first K steps. Inside a Trainer's fit, max_steps=K ends the fit and
            # the script goes on (what it does after training must not fail); a raw loop is stopped.
            closing = not record.window_closed
            if closing:
                record.window_closed = True
                start_after_training_budget(options.after_training_seconds)
            if FITS_RUNNING:
                trainer, steps_before = FITS_RUNNING[-1]
                if closing or record.steps - steps_before >= options.steps:  # a later fit: its K steps
                    stop_like_early_stopping(trainer)
                return
            if record.steps > options.steps:
                record.stopping = "at a raw optimizer step after training"
            raise StopAfterSteps
        if not record.trainer_built:
            raise StopAfterSteps  # a loop outside any Trainer fails verify anyway: not for hours

    register_optimizer_step_post_hook(after_step)


def stop_like_early_stopping(trainer: Any) -> None:
    """max_steps=K would end the fit in the middle of an epoch, with `on_train_epoch_end` run but
    no validation before it, which a full run never does (a hook reading what validation computed
    would fail). Stop as EarlyStopping does instead: validate on this batch, then end the epoch.
    min_epochs/min_steps would refuse the early stop; `fit_loop` is Lightning's internal loop."""
    trainer.should_stop = True
    fit_loop = getattr(trainer, "fit_loop", None)
    if fit_loop is not None and hasattr(fit_loop, "min_epochs") and hasattr(fit_loop, "epoch_loop"):
        fit_loop.min_epochs = None
        fit_loop.epoch_loop.min_steps = None


def handle_after_training_budget(record: Record, seconds: float) -> None:
    """After the window a parity run has `seconds` more, then it stops where it is: a SIGALRM, whose
    handler is set before the script runs (Lightning's fit restores the handlers it found on entry)."""
    if seconds <= 0 or not hasattr(signal, "setitimer"):
        return

    def spent(signum, frame):
        record.stopping = f"{seconds:g} s after training (its time budget)"
        raise AfterTrainingBudgetSpent

    signal.signal(signal.SIGALRM, spent)  # run_script runs on the main thread
    BUDGET_HANDLERS.append(spent)


BUDGET_HANDLERS: list[Callable] = []


def start_after_training_budget(seconds: float) -> None:
    """Starts the alarm, unless the script has put a SIGALRM handler of its own in place of ours."""
    if BUDGET_HANDLERS and signal.getsignal(signal.SIGALRM) is BUDGET_HANDLERS[-1]:
        signal.setitimer(signal.ITIMER_REAL, seconds)


def stop_after_training_budget() -> None:
    if hasattr(signal, "setitimer"):
        signal.setitimer(signal.ITIMER_REAL, 0)


# ---------------------------------------------------------------------------------------------
# Lightning: patch Trainer.__init__ as soon as the script imports Lightning


class AfterImport(importlib.abc.MetaPathFinder):
    """Calls `callbacks[name](module)` right after the module `name` is first executed, so the
    harness never imports Lightning itself (a raw PyTorch script does not pay for it)."""

    def __init__(self, callbacks: Mapping[str, Callable[[ModuleType], None]]) -> None:
        self.callbacks = callbacks

    def find_spec(self, fullname, path, target=None):
        callback = self.callbacks.get(fullname)
        if callback is None:
            return None
        spec = self._spec_from_other_finders(fullname, path, target)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_patch(module):
            exec_module(module)
            callback(module)

        spec.loader.exec_module = exec_then_patch
        return spec

    def _spec_from_other_finders(self, fullname, path, target):
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                return spec
        return None


def patch_trainer(
    trainer_module: ModuleType,
    package: str,
    options: Options,
    record: Record,
    root_dir: str,
    harness_command: list[str],
) -> None:
    trainer_class = trainer_module.Trainer
    original_init = trainer_class.__init__

    @functools.wraps(original_init)
    def init(self, *args, **kwargs):
        record.trainer_built = True
        kwargs = forced_trainer_kwargs(kwargs, options, root_dir)
        kwargs["callbacks"] = prepared_callbacks(package, kwargs.get("callbacks"), options, record, root_dir)
        kwargs["enable_checkpointing"] = has_checkpoint_callback(package, kwargs["callbacks"])
        kwargs["logger"] = quiet_logger(package, root_dir)
        if options.devices > 1:
            launch_ranks_through_harness(package, harness_command)
        original_init(self, *args, **kwargs)

    trainer_class.__init__ = init
    trainer_class.fit = tracking_fit(trainer_class.fit, options, record)
    for name in ("validate", "test", "predict"):
        evaluate = with_current_weights(getattr(trainer_class, name))
        if options.parity:
            evaluate = few_batches_after_training(evaluate, name, options, record)
        setattr(trainer_class, name, evaluate)


FITS_RUNNING: list[
    tuple[Any, int]
] = []  # (Trainer, optimizer steps before it) of each fit running, innermost last

# the Trainer attribute that limits the batches of each evaluation (and of validation within fit)
BATCH_LIMITS = {
    "validate": "limit_val_batches",
    "test": "limit_test_batches",
    "predict": "limit_predict_batches",
}


def cap_batches(trainer: Any, attribute: str, steps: int) -> None:
    limit = getattr(trainer, attribute, None)
    if not (isinstance(limit, int) and not isinstance(limit, bool) and limit <= steps):
        setattr(trainer, attribute, steps)


def tracking_fit(method: Callable, options: Options, record: Record) -> Callable:
    """Counts the fits running (an optimizer step inside one does not stop a parity run) and notes
    that one returned. A fit that starts after the window validates on a few batches only."""

    @functools.wraps(method)
    def fit(self, *args, **kwargs):
        if options.parity and record.window_closed:
            cap_batches(self, BATCH_LIMITS["validate"], options.steps)
        FITS_RUNNING.append((self, record.steps))
        try:
            result = method(self, *args, **kwargs)
        finally:
            FITS_RUNNING.pop()
        record.fit_returned = True
        return result

    return fit


def few_batches_after_training(method: Callable, name: str, options: Options, record: Record) -> Callable:
    """In a parity run, `trainer.validate/test/predict` after the window runs K batches: it only has
    to run without error. Before the window it runs in full, as the original's evaluation did (its
    batches may draw from the global random generator)."""

    @functools.wraps(method)
    def evaluate(self, *args, **kwargs):
        if record.window_closed and not FITS_RUNNING:
            cap_batches(self, BATCH_LIMITS[name], options.steps)
        return method(self, *args, **kwargs)

    return evaluate


def forced_fabric_kwargs(user_kwargs: dict[str, Any], options: Options) -> dict[str, Any]:
    """The user's Fabric arguments with CPU and the device count on top of them."""
    kwargs = dict(user_kwargs)
    kwargs.update(
        accelerator="cpu",
        devices=options.devices,
        num_nodes=1,
        strategy="ddp" if options.devices > 1 else "auto",
    )
    if str(kwargs.get("precision")) in ("16-mixed", "16"):
        # fp16 autocast and loss scaling exist on CUDA only: on the CPU the original's
        # torch.autocast("cuda") and GradScaler are off, and Fabric would switch to bf16
        kwargs["precision"] = "32-true"
    return kwargs


def patch_fabric(
    fabric_module: ModuleType, package: str, options: Options, record: Record, harness_command: list[str]
) -> None:
    fabric_class = fabric_module.Fabric
    original_init = fabric_class.__init__

    @functools.wraps(original_init)
    def init(self, *args, **kwargs):
        record.fabric_built = True
        if options.devices > 1:
            launch_ranks_through_harness(package, harness_command)
        original_init(self, *args, **forced_fabric_kwargs(kwargs, options))

    fabric_class.__init__ = init


def with_current_weights(method: Callable) -> Callable:
    """verify writes no checkpoints, so `ckpt_path` None/"best"/"last" (which after fit means
    "load the best checkpoint") would fail; evaluate the weights the run has instead."""
    signature = inspect.signature(method)

    @functools.wraps(method)
    def evaluate(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        if bound.arguments.get("ckpt_path") in (None, "best", "last"):
            bound.arguments["ckpt_path"] = None
            if bound.arguments.get("model") is None:
                bound.arguments["model"] = self.lightning_module
        return method(*bound.args, **bound.kwargs)

    return evaluate


def prepared_callbacks(
    package: str, user_callbacks: Any, options: Options, record: Record, root_dir: str
) -> list[Any]:
    callbacks_module = importlib.import_module(f"{package}.callbacks")
    callbacks = as_list(user_callbacks)
    for callback in callbacks:
        if isinstance(callback, callbacks_module.ModelCheckpoint):
            # Keep the user's callback (later code may read it) but never write into their folders.
            callback.dirpath = os.path.join(root_dir, "checkpoints")
    callbacks.append(stage_recorder(package, callbacks_module.Callback, record, options.summary))
    return callbacks


def has_checkpoint_callback(package: str, callbacks: list[Any]) -> bool:
    # enable_checkpointing=False with a ModelCheckpoint in the callbacks is an error in Lightning.
    checkpoint_class = importlib.import_module(f"{package}.callbacks").ModelCheckpoint
    return any(isinstance(callback, checkpoint_class) for callback in callbacks)


def quiet_logger(package: str, root_dir: str) -> Any:
    """A logger that writes nothing (what fast_dev_run uses) instead of `logger=False`, so that
    callbacks that need a logger, like LearningRateMonitor, still work."""
    dummy_logger: Any = importlib.import_module(f"{package}.loggers.logger").DummyLogger

    class QuietLogger(dummy_logger):
        @property
        def save_dir(self) -> str:  # trainer.log_dir points into the temporary folder
            return root_dir

    return QuietLogger()


def stage_recorder(package: str, callback_base: type, record: Record, summary: bool) -> Any:
    class StageRecorder(callback_base):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if summary and record.summary is None:
                record.summary = model_summary(package, pl_module, batch)

        def on_train_batch_end(self, trainer, *args):
            record.saw_stage("train")

        def on_validation_batch_end(self, trainer, *args):
            if not trainer.sanity_checking:
                record.saw_stage("validate")

        def on_test_batch_end(self, trainer, *args):
            record.saw_stage("test")

        def on_predict_batch_end(self, trainer, *args):
            record.saw_stage("predict")

    return StageRecorder()


def model_summary(package: str, pl_module: Any, batch: Any) -> str:
    """Lightning's layer table; In/Out sizes come from `example_input_array`, which we take from
    the first training batch when the module sets none."""
    summary_module = importlib.import_module(f"{package}.utilities.model_summary")
    try:
        if pl_module.example_input_array is None:
            pl_module.example_input_array = batch[0] if isinstance(batch, (tuple, list)) else batch
        return str(summary_module.ModelSummary(pl_module, max_depth=1))
    except Exception as exc:  # a summary must never fail the run
        return f"(no model summary: {type(exc).__name__}: {exc})"


def launch_ranks_through_harness(package: str, harness_command: list[str]) -> None:
    """DDP starts ranks 1..N-1 by re-running `sys.argv`; make them run under the harness too, or
    they would build an unpatched Trainer (or Fabric). `_basic_subprocess_cmd` is private Lightning API."""
    launcher: Any = importlib.import_module(f"{package}.strategies.launchers.subprocess_script")
    launcher._basic_subprocess_cmd = lambda: list(harness_command)


# ---------------------------------------------------------------------------------------------
# Running the script and reporting


def run_script(options: Options, record: Record, root_dir: str, harness_command: list[str]) -> dict | None:
    """Runs the script as __main__; returns the error it raised (as a dict), or None."""
    try:
        import torch
    except ImportError as exc:
        return missing_package_error(exc)

    seed_everything(torch, options.seed)
    if options.parity:
        spawn_one_process_here(torch)
    record_losses(torch, record)
    count_optimizer_steps(torch, record, options)
    if options.parity:
        handle_after_training_budget(record, options.after_training_seconds)
    patches = {
        name: functools.partial(
            patch_trainer,
            package=package,
            options=options,
            record=record,
            root_dir=root_dir,
            harness_command=harness_command,
        )
        for name, package in TRAINER_MODULES.items()
    }
    patches.update(
        {
            name: functools.partial(
                patch_fabric, package=package, options=options, record=record, harness_command=harness_command
            )
            for name, package in FABRIC_MODULES.items()
        }
    )
    sys.meta_path.insert(0, AfterImport(patches))

    # As `python SCRIPT ARGS`: the script's folder first on sys.path, the working folder unchanged.
    sys.argv = [options.script, *options.script_args]
    sys.path[0] = os.path.dirname(options.script)
    try:
        try:
            runpy.run_path(options.script, run_name="__main__")
        finally:
            stop_after_training_budget()  # before anything below can be interrupted
    except StopAfterSteps as exc:
        if record.stopping is not None:  # stopped after the window: say where
            where = error_from_exception(exc, options.script)
            record.stopped = {"reason": record.stopping, "file": where["file"], "line": where["line"]}
    except SystemExit as exc:
        if exc.code not in (None, 0):
            return error_from_exception(exc, options.script, f"exited with status {exc.code}")
    except BaseException as exc:
        if isinstance(exc, ImportError) and exc.name in ("torch", "lightning", "pytorch_lightning"):
            return missing_package_error(exc)
        return error_from_exception(exc, options.script)
    return None


def spawn_one_process_here(torch: ModuleType) -> None:
    """`mp.spawn(worker, args, nprocs=1)` calls `worker(0, *args)` in this process, where the losses
    are recorded (the script's own arguments choose one process for a parity run)."""
    import torch.multiprocessing as mp

    original_spawn = mp.spawn

    @functools.wraps(original_spawn)
    def spawn(fn, args=(), nprocs=1, join=True, daemon=False, start_method="spawn"):
        if nprocs != 1:
            return original_spawn(fn, args, nprocs, join, daemon, start_method)
        fn(0, *args)
        return None

    mp.spawn = spawn


def missing_package_error(exc: ImportError) -> dict:
    package = exc.name or "torch"
    message = (
        f"{package} is not installed for {sys.executable}; install it with "
        f"`{sys.executable} -m pip install {package}` (or choose another interpreter with --python)"
    )
    return {"type": "ModuleNotFoundError", "message": message, "file": None, "line": None, "traceback": []}


def error_from_exception(exc: BaseException, script: str, message: str | None = None) -> dict:
    """The error as JSON, located at the innermost frame in the user's script."""
    frames = traceback.extract_tb(exc.__traceback__)
    user_frames = [frame for frame in frames if same_file(frame.filename, script)]
    location = user_frames[-1] if user_frames else (frames[-1] if frames else None)
    file, line = (location.filename, location.lineno) if location else (None, None)
    if isinstance(exc, SyntaxError) and exc.filename:
        file, line = exc.filename, exc.lineno
    return {
        "type": type(exc).__name__,
        "message": message if message is not None else str(exc),
        "file": file,
        "line": line,
        "traceback": traceback_from_script(exc),
    }


def traceback_from_script(exc: BaseException) -> list[str]:
    """The formatted traceback without the harness's own frames: it starts in the script (or, for
    a SyntaxError in it, is just the error)."""
    tb = exc.__traceback__
    while tb is not None and is_harness_frame(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    return text.rstrip("\n").splitlines()


def is_harness_frame(filename: str) -> bool:
    return (
        filename == "<frozen runpy>"
        or os.path.basename(filename) == "runpy.py"
        or same_file(filename, HARNESS_FILE)
    )


def same_file(a: str, b: str) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def result_path(options: Options) -> str:
    # DDP ranks 1..N-1 run this harness again with the same options; each writes its own file.
    rank = os.environ.get("LOCAL_RANK", "0")
    return options.result if rank == "0" else f"{options.result}.rank{rank}"


def write_result(path: str, record: Record, error: dict | None, seconds: float) -> None:
    result = {"ok": error is None, "seconds": seconds, "error": error, **asdict(record)}
    with open(path, "w", encoding="utf-8") as file:
        json.dump(result, file)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    options = parse_args(argv)
    harness_command = [sys.executable, HARNESS_FILE, *argv]
    root_dir = options.root_dir or tempfile.mkdtemp(prefix="loopshift-verify-")
    os.makedirs(root_dir, exist_ok=True)
    record = Record()
    error: dict | None = None
    started = time.perf_counter()
    try:
        error = run_script(options, record, root_dir, harness_command)
    except BaseException as exc:  # a bug in the harness itself must not read as a PASS
        error = error_from_exception(exc, HARNESS_FILE, f"internal error in the verify harness: {exc!r}")
        raise
    finally:
        write_result(result_path(options), record, error, time.perf_counter() - started)
        if options.root_dir is None:
            shutil.rmtree(root_dir, ignore_errors=True)
    return 0 if error is None else 1


if __name__ == "__main__":
    sys.exit(main())
