"""The plain data model of training code that analysis finds and generation consumes."""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from .diagnostics import Span
from .idioms.clipping import TrainerClipping


@dataclass
class OptimizerDef:
    name: str
    statement: cst.SimpleStatementLine  # `optimizer = optim.SGD(model.parameters(), ...)`
    call: cst.Call
    model: str  # the variable whose parameters it optimizes
    span: Span
    model_reference: cst.BaseExpression | None = None  # where the optimizer's code names the model
    target: cst.BaseExpression | None = None  # `optimizer` or `self.optimizer`
    parameter: bool = False  # a parameter of `statement` (a function): every caller passes one in


@dataclass
class SchedulerDef:
    name: str
    statement: cst.SimpleStatementLine
    call: cst.Call
    span: Span
    is_plateau: bool = False
    target: cst.BaseExpression | None = None
    parameter: bool = False  # a parameter of `statement` (a function): every caller passes one in


@dataclass
class EpochSegments:
    """Per-epoch code around the batch loop, each list in source order."""

    before: list[cst.BaseStatement] = field(default_factory=list)  # -> on_train_epoch_start
    after: list[cst.BaseStatement] = field(default_factory=list)  # -> on_train_epoch_end


@dataclass
class Accumulation:
    """`if (i + 1) % N == 0:` around the optimizer step, with the loss divided by N."""

    condition: cst.If
    every: cst.BaseExpression  # N
    division: cst.BaseStatement | None  # `loss = loss / N` (None: `(loss / N).backward()`)
    at_last_batch: bool  # `or i == len(loader) - 1`: steps on the last batch, as Lightning does
    # reads of the divided loss after the division (`total += loss.item()`): they read `loss / N`
    divided_reads: list[cst.Name] = field(default_factory=list)
    constant: bool = (
        True  # N reads as it is in the module's code (else: self.trainer.accumulate_grad_batches)
    )
    undone: list[cst.BinaryOperation] = field(default_factory=list)  # `loss.item() * N` -> `loss.item()`


@dataclass
class EvaluationLoop:
    """An evaluation loop: run once per epoch, it is Lightning's validation; after training, its test."""

    loop: cst.For  # the loop over the validation loader
    statement: cst.BaseStatement  # what it replaces: the call or the inline block
    before: list[cst.BaseStatement]  # -> on_validation_epoch_start (the accumulators)
    after: list[cst.BaseStatement]  # -> on_validation_epoch_end (reductions, prints, the returned metric)
    moved: list[
        cst.BaseStatement
    ]  # statements before it that it takes along (inline accumulators, model.eval())
    function: cst.FunctionDef | None = None  # test(model, device, loader)
    call: cst.Call | None = None
    metrics: list[cst.Name] = field(default_factory=list)  # `accuracy` in `accuracy = test(...)`: logged


@dataclass
class EarlyStopping:
    """A patience counter at the end of an epoch that breaks out of training: Lightning's callback."""

    monitor: cst.Name  # the logged validation metric it compares
    mode: str  # "min" / "max"
    patience: cst.BaseExpression
    min_delta: cst.BaseExpression | None
    condition: cst.If  # `if val_loss < best: ... else: wait += 1 ...`, kept without the counting
    reset: cst.SimpleStatementLine  # `wait = 0`
    check: cst.If  # `if wait >= patience: break`
    init: cst.SimpleStatementLine  # `wait = 0` before training


@dataclass
class ScalarWriter:
    """A TensorBoard SummaryWriter used only for `add_scalar` (and closed after training)."""

    statement: cst.SimpleStatementLine  # `writer = SummaryWriter(log_dir)`, removed
    log_dir: cst.BaseExpression | None
    scalars: list[cst.SimpleStatementLine]  # `writer.add_scalar(tag, value, step)` -> self.log(tag, value)
    closing: list[cst.SimpleStatementLine]  # `writer.close()` / `writer.flush()`, removed
    imports: list[cst.SimpleStatementLine]  # `from torch.utils.tensorboard import SummaryWriter`, unused now


@dataclass
class HandUpdate:
    """Parameters the step updates itself, without an optimizer (see updates.py)."""

    block: cst.With | cst.For  # `with torch.no_grad(): ... p -= lr * p.grad`; `p.data.add_(-lr * p.grad)`
    model: cst.BaseExpression | None  # `model` of `for p in model.parameters()`
    tensors: list[cst.Name]  # raw tensors made with requires_grad=True: parameters of the module


@dataclass
class TrainingLoop:
    """One manual training loop: a batch loop with the step triple, and how epochs drive it."""

    batch_loop: cst.For | cst.While  # a loop over batches, or a step loop drawing them with next()
    statement: cst.BaseStatement  # the batch loop, or the `with tqdm(loader) as bar:` holding it
    loader: cst.BaseExpression  # the iterable without enumerate()/tqdm()
    batch_target: cst.BaseAssignTargetExpression
    index_name: str | None
    index_start: cst.BaseExpression | None
    optimizer: OptimizerDef | None  # None: the script updates the parameters itself (hand_update)
    model: str
    step_statements: list[cst.SimpleStatementLine]  # zero_grad / step, removed
    backward: cst.SimpleStatementLine
    loss: cst.BaseExpression
    span: Span
    # how the loop is driven
    host: cst.BaseStatement  # the statement trainer.fit replaces (epoch loop, call or batch loop)
    epoch_loop: cst.For | None = None
    epochs: cst.BaseExpression | None = None  # max_epochs, in the host's scope
    epoch_name: str | None = None
    epoch_start: cst.BaseExpression | None = None
    function: cst.FunctionDef | None = None  # train(...) holding the batch loop, when called
    call: cst.Call | None = None  # its call inside the epoch loop
    segments: EpochSegments = field(default_factory=EpochSegments)
    schedulers: list[tuple[SchedulerDef, str]] = field(default_factory=list)  # (scheduler, interval)
    scheduler_steps: list[cst.SimpleStatementLine] = field(default_factory=list)
    clip: TrainerClipping | None = None  # see idioms/clipping.py
    mode_switches: list[cst.SimpleStatementLine] = field(default_factory=list)  # model.train()/eval()
    # schedulers of this optimizer stepped by the user's own code (ReduceLROnPlateau.step(metric), ...)
    kept_schedulers: list[SchedulerDef] = field(default_factory=list)
    manual: bool = False  # manual optimization: backward() and step() stay in the user's order
    backwards: list[cst.SimpleStatementLine] = field(default_factory=list)  # under manual optimization
    optimizers: list[OptimizerDef] = field(default_factory=list)  # under manual optimization, in order
    # a step loop's `try: batch = next(it) except StopIteration: ...`, or `batch = next(it)` of an
    # endless `it`
    fetch: cst.Try | cst.SimpleStatementLine | None = None
    max_steps: cst.BaseExpression | None = None  # a step loop's step count
    validation: EvaluationLoop | None = None
    test: EvaluationLoop | None = None  # an evaluation of the trained model after training
    early_stopping: EarlyStopping | None = None
    hand_update: HandUpdate | None = None
    writer: ScalarWriter | None = None
    closure: cst.FunctionDef | None = None  # `def closure(): ...` passed to `optimizer.step(closure)`
    # prints of the loss in the step and the running sums only they read: the progress bar shows the loss
    loss_reports: list[cst.BaseStatement] = field(default_factory=list)
    report_inits: list[cst.SimpleStatementLine] = field(default_factory=list)  # `running_loss = 0.0`
    accumulation: Accumulation | None = None
    precision: tuple[str, cst.BaseExpression | None] | None = None  # ("16-mixed", enabled)
    autocasts: list[cst.With] = field(default_factory=list)  # unwrapped: Lightning autocasts the step
    # statements the Trainer now owns, dropped: scaler.update(), scaler.unscale_(), a zero_grad()
    # before the loop
    owned_statements: list[cst.SimpleStatementLine] = field(default_factory=list)
    scaler: cst.BaseStatement | None = None  # `scaler = GradScaler(...)`, removed
    scaled_steps: list[cst.SimpleStatementLine] = field(default_factory=list)  # `scaler.step(opt)`, manual
    progress_bar: str | None = None  # `bar` in `bar = tqdm(loader)` / `with tqdm(loader) as bar`
    progress_statements: list[cst.BaseStatement] = field(default_factory=list)  # creating the bar
    # zero_grad(set_to_none=False): gradients zeroed in place, so the optimizer still updates parameters
    # that got none (momentum, weight decay); Lightning sets them to None unless told otherwise
    zeroes_gradients: bool = False
    # the optimizer the script built away from the loop and returned (`build_training_objects(seed)`):
    # configure_optimizers hands this expression of the loop over, the object itself, and builds nothing
    handed_over: cst.BaseExpression | None = None

    @property
    def all_optimizers(self) -> list[OptimizerDef]:
        return self.optimizers or ([self.optimizer] if self.optimizer is not None else [])

    @property
    def model_reference(self) -> cst.BaseExpression | None:
        """Where the code names the model: in its optimizer's parameters, or its hand-written update."""
        if self.optimizer is not None:
            return self.optimizer.model_reference
        return self.hand_update.model if self.hand_update is not None else None


@dataclass
class Spawn:
    """`mp.spawn(worker, args=(...), nprocs=N)`: the Trainer starts the processes instead."""

    statement: cst.SimpleStatementLine
    call: cst.Call
    worker: cst.FunctionDef
    rank: cst.Param  # the worker's first parameter, which spawn fills
    arguments: list[cst.BaseExpression]  # what spawn passes after the rank
    devices: cst.BaseExpression  # the process count, in the worker's terms
    # where the script also calls the worker itself (`else: main_worker(args.gpu, ngpus, args)`): the
    # worker keeps its rank parameter, and the spawn site passes the rank Lightning's launcher sets
    direct: list[cst.Call] = field(default_factory=list)


@dataclass
class Distribution:
    """Data-parallel plumbing the Trainer owns, found once per module."""

    # `model = DDP(model)`, the process group, set_device, MASTER_ADDR/PORT, samplers and their
    # set_epoch, helpers left empty by that and their calls
    removed: list[cst.BaseStatement] = field(default_factory=list)
    unwrapped: list[cst.CSTNode] = field(default_factory=list)  # `DDP(net)` -> net, `model.module` -> model
    untaken: list[cst.IfExp] = field(
        default_factory=list
    )  # `a if isinstance(model, DataParallel) else b` -> b
    loaders: dict[int, tuple[cst.Call, cst.BaseExpression]] = field(
        default_factory=dict
    )  # DataLoader(sampler=) -> shuffle
    set_epochs: list[cst.BaseStatement] = field(
        default_factory=list
    )  # and `if isinstance(s, DistributedSampler):`
    samplers: list[cst.CSTNode] = field(default_factory=list)  # the samplers' construction (their imports go)
    # reads of a removed object that nothing rewrites: reported, with a TODO (node, reason)
    leftovers: list[tuple[cst.CSTNode, str]] = field(default_factory=list)
    spawn: Spawn | None = None
    devices: cst.BaseExpression | None = None  # from DataParallel(model, device_ids=list(range(N)))
    processes: list[cst.CSTNode] = field(default_factory=list)  # a process group or DDP: strategy="ddp"


@dataclass
class TrainingCode:
    """Everything analysis found in one module."""

    loops: list[TrainingLoop] = field(default_factory=list)
    optimizers: list[OptimizerDef] = field(default_factory=list)
    schedulers: list[SchedulerDef] = field(default_factory=list)
    models: dict[str, str] = field(default_factory=dict)  # nn.Module subclasses: class name -> qualified base
    problems: list[tuple[str, str, cst.CSTNode]] = field(default_factory=list)  # (code, reason, node)
    distribution: Distribution = field(default_factory=Distribution)

    def problem(self, code: str, reason: str, node: cst.CSTNode) -> None:
        """A loop (or a part of one) not converted: the first reason given for a node stays."""
        if all(seen is not node for _, _, seen in self.problems):
            self.problems.append((code, reason, node))
