"""A grammar of hand-written PyTorch training loops, as hypothesis strategies.

`programs()` draws a `Program` (the choices) and renders it into a complete, runnable script:
synthetic data in a TensorDataset, a model, an optimizer and a loop in one of the idioms people
write. The choices cover the order of the step calls, the batch unpacking style, where the loop
lives (module level, a per-epoch function, main()), the names, `.to(device)`, comments and blank
lines between statements, end-of-line comments, a running-loss total and progress prints.
`shaped(k)` builds the same kind of program deterministically, one for each shape of SHAPES.

The optimization step has idioms of its own, each an independent choice where they compose:

- gradient clipping between backward and step: `clip_grad_norm_(model.parameters(), 1.0)` or
  `clip_grad_value_(model.parameters(), 0.5)` (or a threshold low enough to clip), spelled
  `torch.nn.utils.` or `nn.utils.`;
- a learning-rate scheduler: StepLR stepped once an epoch after the batch loop (only where there
  is an epoch loop), or OneCycleLR / LambdaLR stepped every batch right after the optimizer step;
- `zero_grad(set_to_none=False)` (beside no argument and `set_to_none=True`);
- mixed precision that is off on the CPU: `use_amp = torch.cuda.is_available()`, a GradScaler
  (`torch.cuda.amp.GradScaler(enabled=use_amp)` or `torch.amp.GradScaler("cuda", enabled=use_amp)`),
  `with torch.autocast(device_type="cuda", enabled=use_amp):` (or another spelling of AUTOCASTS)
  around forward and loss, `scaler.scale(loss).backward()`,
  `scaler.step(optimizer)`, `scaler.update()`; with clipping, `scaler.unscale_(optimizer)` first;
- gradient accumulation (only with an index from enumerate): `loss = loss / N` (or `loss /= N`)
  before backward, and `if (i + 1) % N == 0:` around clipping, step, scheduler step and
  zero_grad. Spelled so, loopshift converts it with an LS007 TODO (the loop carries a partial
  accumulation over an epoch's end, Lightning steps on the last batch): see `Program.diagnostics`.
  Spelled `if (i + 1) % N == 0 or i + 1 == len(loader):` it steps on the last batch too, and
  converts cleanly.

Not generated:

- a per-epoch scheduler in a single pass (there is no epoch loop to step it in);
- the scaler spelled `torch.GradScaler("cuda", ...)` (tests/test_amp_accumulation.py has it).

What scripts do after the training loop and around it is a grammar of its own, drawn by
`programs(after=True)` only (every choice off otherwise, so the draws above stay as they were):

- a range loop over batch indices that slices its own batches (`for i in range(n_batches):`,
  `start = i * 8`, `x, y = X[start:start + 8], Y[start:start + 8]`), at module level or in main();
- the loop's variables read after it: the batch index, the epoch, the last loss; perhaps then
  rebound and read again;
- a name the epoch code sets (`note = f"epoch {epoch} done"`), read after training, then rebound
  (`note = "reset"`) and read again;
- a checkpoint written every epoch through an open file (`with open(path, "wb") as f:
  torch.save(model.state_dict(), f)`) and reopened after training (`torch.load(f)`,
  `load_state_dict`);
- user names the converter also introduces (`trainer`, `lit_model`, `batch`, `batch_idx`,
  `LitModel`, their `_` variants, LightningModule attributes such as `logger`), bound before the
  loop and read after it, and perhaps in the epoch code;
- an evaluation function with keyword defaults, `def evaluate(epoch=0, verbose=True)` reading the
  module's globals (or `def evaluate(model, val_loader, epoch=0, verbose=True)` where the model is
  main()'s), called each epoch as `evaluate(epoch)` (or `val_loss = evaluate(epoch)` and a print),
  perhaps after a print of the epoch's own, and after training as `evaluate(verbose=False)`;
- these per-epoch statements in any order after the batch loop (and its per-epoch print).

Every autocast of AUTOCASTS says `"cuda"`, so each converts to `"16-mixed"` (a `"cpu"` one would be
`"bf16-mixed"`, CPU autocast's dtype).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from hypothesis import strategies as st

# name pools: pairwise disjoint, and nothing here shadows a builtin or a module the script uses
MODELS = ["model", "net", "classifier"]
OPTIMIZERS = ["optimizer", "opt", "optim_"]
LOSSES = ["loss", "batch_loss"]
LOADERS = ["loader", "train_loader", "dl", "train_dl"]
CRITERIA = ["criterion", "loss_fn", "loss_func", "crit"]
BATCH_PAIRS = [("x", "y"), ("inputs", "targets"), ("data", "target"), ("xb", "yb"), ("features", "labels")]
OUTPUTS = ["out", "logits", "output", "pred", "outputs"]
INDICES = ["i", "batch_idx", "step", "it"]
TOTALS = ["total", "running_loss", "epoch_loss"]
SCHEDULER_NAMES = ["scheduler", "lr_scheduler", "sched"]
SCALER_NAMES = ["scaler", "grad_scaler"]
CLASSES = ["Net", "MLP", "Classifier"]
TRAIN_FUNCTIONS = ["train", "train_one_epoch", "run_epoch"]
ACCUM_NAMES = ["ACCUM", "ACCUM_STEPS", "GRAD_ACCUM"]
COMMENTS = [
    "# forward pass",
    "# compute the loss",
    "# update the weights",
    "# TODO: try a scheduler",
    "# NOTE: batches are (features, labels)",
    "#",
]
TRAILING = ["# noqa: E501", "# clear old gradients", "# type: ignore", "# (B, 3)"]

UNPACKINGS = ["pair", "batch", "enumerate", "enumerate_index"]
# with programs(after=True) only, and not in a per-epoch function: `for i in range(n_batches):`
# slicing X and Y
RANGE = "range"
# where optimizer.zero_grad() goes, relative to forward / backward / step
ZERO_GRADS = ["before_forward", "before_backward", "after_step"]
# the argument of zero_grad(): set_to_none=False becomes an optimizer_zero_grad override
ZERO_GRAD_ARGUMENTS = ["", "set_to_none=True", "set_to_none=False"]
# module: `for epoch` at module level; function: a per-epoch train() called from main();
# main: the whole loop inside main(); single: one pass at module level, no epoch loop
NESTINGS = ["module", "function", "main", "single"]
# how main() calls the per-epoch train function when it returns the mean loss: as an assignment
# (`avg = train(...)`, then a print), or inside the f-string of the print, which loopshift does not
# convert (LS001: the function must be called exactly once, as a statement)
RESULT_USES = ["assign", "inline"]
OPTIMIZER_CALLS = ["SGD({params}, lr=0.1)", "SGD({params}, lr=0.05, momentum=0.9)", "Adam({params}, lr=1e-3)"]

# -- the optimization step
CLIPS = [None, "norm", "value"]
# the thresholds: the usual one, and a tight one that clips this grammar's gradients (their norm is
# about 0.6 to 0.8, no entry above 0.3) so that training tells whether clipping happened
CLIP_THRESHOLDS = {"norm": ("1.0", "0.25"), "value": ("0.5", "0.05")}
CLIP_MODULES = ["torch.nn.utils", "nn.utils"]
# StepLR is stepped once an epoch, after the batch loop; the others every batch, after the step
SCHEDULERS = [None, "StepLR", "OneCycleLR", "LambdaLR"]
PER_EPOCH_SCHEDULERS = {"StepLR"}
SCHEDULER_CALLS = {
    "StepLR": "StepLR({optimizer}, step_size=1, gamma=0.9)",
    "OneCycleLR": "OneCycleLR({optimizer}, max_lr=0.1, epochs={epochs}, steps_per_epoch={batches})",
    "LambdaLR": "LambdaLR({optimizer}, lr_lambda=lambda t: 0.95 ** t)",
}
# the GradScaler's spelling (None: no mixed precision); both are disabled on the CPU through use_amp
AMPS = [None, "cuda.amp", "amp"]
SCALER_CALLS = {
    "cuda.amp": "torch.cuda.amp.GradScaler(enabled=use_amp)",
    "amp": 'torch.amp.GradScaler("cuda", enabled=use_amp)',
}
# the autocast block's spellings that loopshift converts (it reads `dtype=` and `enabled=`, not the device)
AUTOCASTS = [
    'torch.autocast(device_type="cuda", enabled=use_amp)',
    'torch.autocast("cuda", enabled=use_amp)',
    'torch.amp.autocast("cuda", enabled=use_amp)',
    "torch.cuda.amp.autocast(enabled=use_amp)",
]
# every: `if (i + 1) % N == 0:` (LS007); every_or_last: `... or i + 1 == len(loader):` (clean)
ACCUMULATIONS = [None, "every", "every_or_last"]
DIVISIONS = ["assign", "augmented"]  # loss = loss / N, loss /= N
# the step's idioms whose combinations the covering set takes pairwise (see step_design)
STEP_FACTORS = {
    "clip": CLIPS,
    "scheduler": SCHEDULERS,
    "amp": AMPS,
    "accumulation": ACCUMULATIONS,
    "zero_grad_argument": ZERO_GRAD_ARGUMENTS,
}

# -- after the loop (programs(after=True))
# the loop's variables read after it
AFTER_READS = ("index", "epoch", "loss")
# user names that the conversion also introduces (generated names, their fresh variants, attributes of
# a LightningModule), none of them in the pools above
COLLISIONS = [
    "trainer",
    "lit_model",
    "batch",
    "batch_idx",
    "LitModel",
    "trainer_",
    "lit_model_",
    "logger",
    "global_step",
]
# the per-epoch evaluation call: a statement, or an assignment and a print of its result
EVALUATIONS = [None, "call", "assign"]
CHECKPOINT = "checkpoint.pt"  # relative: a run in its own directory
# the start of every line the grammar's scripts print (Lightning's progress bar may share a line)
PRINTED = (
    "epoch ",
    "loss ",
    "last ",
    "note: ",
    "reloaded ",
    "final val loss ",
    "  val loss ",
    "done",
    "user ",
    *(f"{name}: " for name in COLLISIONS),
)
VAL_LOADER = "val_loader"
N_BATCHES = "n_batches"

# the documented diagnostic of a loop that accumulates gradients across an epoch's end
PARTIAL_ACCUMULATION = (
    "LS007 Lightning also steps after the last batch of an epoch; the loop carried a "
    "partial accumulation over unless the batches per epoch are a multiple of {n}"
)


@dataclass(frozen=True)
class Names:
    model: str
    optimizer: str
    loss: str
    loader: str
    criterion: str
    x: str
    y: str
    output: str
    index: str
    total: str
    scheduler: str = "scheduler"
    scaler: str = "scaler"


@dataclass(frozen=True)
class Program:
    names: Names
    outer: Names  # main()'s names for what it passes to the train function (nesting == "function")
    model_class: str | None  # None: nn.Sequential
    unpacking: str
    zero_grad: str
    zero_grad_on_model: bool  # model.zero_grad() rather than optimizer.zero_grad()
    nesting: str
    device: bool
    functional_loss: bool  # F.cross_entropy(...) rather than a criterion object
    optim_alias: bool  # `import torch.optim as optim` / optim.SGD rather than torch.optim.SGD
    optimizer_call: str
    train_mode: bool  # model.train() before the loop
    print_every: int | None  # a progress print: every N batches (when there is an index) or every batch
    running_total: bool
    separators: tuple[str | None, ...]  # one per gap between loop-body statements: None, "" or a comment
    trailing: tuple[str | None, ...]  # one per loop-body statement: an end-of-line comment, or None
    inline_forward: bool  # `loss = criterion(model(x), y)`, no output variable
    zero_grad_argument: str  # see ZERO_GRAD_ARGUMENTS
    split_device: bool  # x = x.to(device) and y = y.to(device) on two lines
    epoch_argument: bool  # nesting == "function": the epoch is passed on and printed by the function
    first_epoch: int  # range(E) or range(1, E + 1)
    samples: int
    epochs: int
    train_function: str
    result_use: str  # see RESULT_USES; only matters for nesting == "function" with running_total
    clip: str | None = None  # see CLIPS
    clip_module: str = "torch.nn.utils"
    tight_clip: bool = False  # the second of CLIP_THRESHOLDS
    scheduler: str | None = None  # see SCHEDULERS
    amp: str | None = None  # see AMPS
    autocast: str = AUTOCASTS[0]
    accumulation: str | None = None  # see ACCUMULATIONS; needs an index (enumerate), zero_grad after_step
    accum_steps: int = 2
    accum_name: str | None = None  # the module-level constant holding N, or None for a literal
    division: str = "assign"
    # -- after the loop (programs(after=True)); see the module docstring
    after_reads: tuple[str, ...] = ()  # of AFTER_READS, those that the nesting can read after the loop
    rebind_reads: bool = False  # after_reads are then rebound (-1, a zero loss) and read again
    note: bool = False  # the epoch code sets `note`, read after training, rebound and read again
    checkpoint: bool = (
        False  # saved through open(path, "wb") each epoch, reopened with torch.load after training
    )
    collision: str | None = None  # one of COLLISIONS, bound before the loop and printed after it
    collision_in_epoch: bool = False  # the epoch code reads the colliding name too
    evaluation: str | None = None  # see EVALUATIONS
    print_before_eval: bool = False  # a print of the epoch's own right before the evaluation call
    # the order of epoch_tail's four blocks (note, checkpoint, colliding read, evaluation); () as listed
    tail_order: tuple[int, ...] = ()

    @property
    def after(self) -> bool:
        """Whether the program has any choice of the after-the-loop grammar."""
        return bool(
            self.after_reads
            or self.note
            or self.checkpoint
            or self.collision
            or self.evaluation
            or self.unpacking == RANGE
        )

    @property
    def convertible(self) -> bool:
        """Whether loopshift is expected to convert the loop (with no diagnostic but `diagnostics`)."""
        return not (self.nesting == "function" and self.running_total and self.result_use == "inline")

    @property
    def clip_threshold(self) -> str:
        return CLIP_THRESHOLDS[self.clip][self.tight_clip]

    @property
    def accumulates(self) -> str:
        """N as the script spells it."""
        return self.accum_name or str(self.accum_steps)

    @property
    def diagnostics(self) -> list[str]:
        """What the conversion of a convertible program reports, as rendered for gen.py: LS007 at
        the accumulation condition where the loop does not step on an epoch's last batch."""
        if self.accumulation != "every":
            return []
        lines = self.render().splitlines()
        condition = f"if ({self.names.index} + 1) % {self.accumulates} == 0:"
        row = next(k for k, line in enumerate(lines) if line.lstrip().startswith(condition))
        column = len(lines[row]) - len(lines[row].lstrip()) + 1
        return [f"gen.py:{row + 1}:{column}: " + PARTIAL_ACCUMULATION.format(n=self.accumulates)]

    @property
    def batches(self) -> int:
        return self.samples // 8

    @property
    def trains_alike(self) -> bool:
        """Whether the converted script is expected to step as the original: converted, and any
        accumulation without `or last batch` is over a whole number of groups an epoch (else the
        LS007 TODO says what differs)."""
        return self.convertible and (self.accumulation != "every" or self.batches % self.accum_steps == 0)

    def render(self) -> str:
        return render(self)


def supported(p: Program) -> bool:
    """The combinations the grammar generates (see the module docstring for those it does not)."""
    return combines(
        (p.nesting, p.unpacking, p.zero_grad), {factor: getattr(p, factor) for factor in STEP_FACTORS}
    )


def combines(shape: tuple[str, str, str], idioms: dict) -> bool:
    """Whether a (nesting, unpacking, zero_grad) shape takes these values of STEP_FACTORS."""
    nesting, unpacking, zero_grad = shape
    if idioms["accumulation"] is not None and (
        not unpacking.startswith("enumerate") or zero_grad != "after_step"
    ):
        return False
    return not (idioms["scheduler"] in PER_EPOCH_SCHEDULERS and nesting == "single")


@st.composite
def names(draw) -> Names:
    x, y = draw(st.sampled_from(BATCH_PAIRS))
    return Names(
        model=draw(st.sampled_from(MODELS)),
        optimizer=draw(st.sampled_from(OPTIMIZERS)),
        loss=draw(st.sampled_from(LOSSES)),
        loader=draw(st.sampled_from(LOADERS)),
        criterion=draw(st.sampled_from(CRITERIA)),
        x=x,
        y=y,
        output=draw(st.sampled_from(OUTPUTS)),
        index=draw(st.sampled_from(INDICES)),
        total=draw(st.sampled_from(TOTALS)),
        scheduler=draw(st.sampled_from(SCHEDULER_NAMES)),
        scaler=draw(st.sampled_from(SCALER_NAMES)),
    )


# the longest loop body: unpack, two .to(device), zero_grad, forward, loss (or an autocast block),
# division, backward, unscale_, clip, step, update, scheduler step, total, print
GAPS = 16


@st.composite
def programs(draw, after: bool = False) -> Program:
    """A program of the grammar; with `after`, with the after-the-loop choices drawn as well."""
    inner = draw(names())
    nesting = draw(st.sampled_from(NESTINGS))
    unpackings = UNPACKINGS + [RANGE] if after and nesting != "function" else UNPACKINGS
    unpacking = draw(st.sampled_from(unpackings))
    separators = draw(
        st.lists(st.one_of(st.none(), st.just(""), st.sampled_from(COMMENTS)), min_size=GAPS, max_size=GAPS)
    )
    trailing = draw(st.lists(st.one_of(st.none(), st.sampled_from(TRAILING)), min_size=GAPS, max_size=GAPS))
    # accumulation needs the index of enumerate
    accumulation = draw(st.sampled_from(ACCUMULATIONS)) if unpacking.startswith("enumerate") else None
    amp = draw(st.sampled_from(AMPS))
    schedulers = [s for s in SCHEDULERS if not (s in PER_EPOCH_SCHEDULERS and nesting == "single")]
    extra = draw(after_choices(inner, nesting, unpacking)) if after else {}
    return Program(
        names=inner,
        outer=draw(names()) if nesting == "function" else inner,
        model_class=draw(st.one_of(st.none(), st.sampled_from(CLASSES))),
        unpacking=unpacking,
        # accumulation steps and clears the gradients together, once every N batches
        zero_grad=draw(st.sampled_from(ZERO_GRADS)) if accumulation is None else "after_step",
        zero_grad_on_model=draw(st.booleans()),
        nesting=nesting,
        device=draw(st.booleans()),
        functional_loss=draw(st.booleans()),
        optim_alias=draw(st.booleans()),
        optimizer_call=draw(st.sampled_from(OPTIMIZER_CALLS)),
        train_mode=draw(st.booleans()),
        print_every=draw(st.one_of(st.none(), st.integers(1, 3))),
        running_total=draw(st.booleans()) and nesting != "single",
        separators=tuple(separators),
        trailing=tuple(trailing),
        inline_forward=draw(st.booleans()),
        zero_grad_argument=draw(st.sampled_from(ZERO_GRAD_ARGUMENTS)),
        split_device=draw(st.booleans()),
        epoch_argument=draw(st.booleans()),
        first_epoch=draw(st.integers(0, 1)),
        samples=draw(st.sampled_from([32, 48, 64])),
        epochs=draw(st.integers(1, 2)),
        train_function=draw(st.sampled_from(TRAIN_FUNCTIONS)),
        result_use=draw(st.sampled_from(RESULT_USES)),
        clip=draw(st.sampled_from(CLIPS)),
        clip_module=draw(st.sampled_from(CLIP_MODULES)),
        tight_clip=draw(st.booleans()),
        scheduler=draw(st.sampled_from(schedulers)),
        amp=amp,
        autocast=draw(st.sampled_from(AUTOCASTS)),
        accumulation=accumulation,
        accum_steps=draw(st.sampled_from([2, 4])),
        accum_name=draw(st.one_of(st.none(), st.sampled_from(ACCUM_NAMES))),
        division=draw(st.sampled_from(DIVISIONS)),
        **extra,
    )


def readable_after(nesting: str, unpacking: str) -> tuple[str, ...]:
    """The loop variables that the code after the loop can read: the index where the loop has one,
    the epoch where there is an epoch loop, index and loss where the batch loop is not in a function."""
    readable = []
    if nesting != "function" and (unpacking.startswith("enumerate") or unpacking == RANGE):
        readable.append("index")
    if nesting != "single":
        readable.append("epoch")
    if nesting != "function":
        readable.append("loss")
    return tuple(readable)


@st.composite
def after_choices(draw, n: Names, nesting: str, unpacking: str) -> dict:
    readable = readable_after(nesting, unpacking)
    reads = tuple(r for r in readable if draw(st.booleans()))
    epochs = nesting != "single"  # the choices that need epoch code
    used = set(vars(n).values()) | ({"batch"} if unpacking in ("batch", "enumerate_index") else set())
    collision = draw(st.one_of(st.none(), st.sampled_from([c for c in COLLISIONS if c not in used])))
    evaluation = draw(st.sampled_from(EVALUATIONS)) if epochs else None
    return dict(
        after_reads=reads,
        rebind_reads=bool(reads) and draw(st.booleans()),
        note=epochs and draw(st.booleans()),
        checkpoint=epochs and draw(st.booleans()),
        collision=collision,
        collision_in_epoch=epochs and collision is not None and draw(st.booleans()),
        evaluation=evaluation,
        print_before_eval=evaluation is not None and draw(st.booleans()),
        tail_order=tuple(draw(st.permutations(range(4)))),
    )


# -- rendering ------------------------------------------------------------------------------
def indent(lines: list[str], depth: int) -> list[str]:
    return [("    " * depth + line) if line else "" for line in lines]


def step_statements(p: Program) -> list[list[str]]:
    """From after backward to the end of the step: unscale_, clipping, the optimizer step, the
    scaler's update, a per-batch scheduler step and zero_grad when it comes after the step."""
    n = p.names
    statements = []
    if p.clip is not None:
        if p.amp is not None:  # clip the real gradients, not the scaled ones
            statements.append([f"{n.scaler}.unscale_({n.optimizer})"])
        statements.append(
            [f"{p.clip_module}.clip_grad_{p.clip}_({n.model}.parameters(), {p.clip_threshold})"]
        )
    if p.amp is not None:
        statements += [[f"{n.scaler}.step({n.optimizer})"], [f"{n.scaler}.update()"]]
    else:
        statements.append([f"{n.optimizer}.step()"])
    if p.scheduler is not None and p.scheduler not in PER_EPOCH_SCHEDULERS:
        statements.append([f"{n.scheduler}.step()"])
    if p.zero_grad == "after_step":
        statements.append([zero_grad_call(p)])
    return statements


def batch_count(p: Program, n: Names) -> str:
    """The number of batches an epoch, as the script spells it."""
    return N_BATCHES if p.unpacking == RANGE else f"len({n.loader})"


def zero_grad_call(p: Program) -> str:
    clears = p.names.model if p.zero_grad_on_model else p.names.optimizer
    return f"{clears}.zero_grad({p.zero_grad_argument})"


def loop_lines(p: Program) -> list[str]:
    """The `for` statement over the batches, at depth 0."""
    n = p.names
    header = {
        "pair": f"for {n.x}, {n.y} in {n.loader}:",
        "batch": f"for batch in {n.loader}:",
        "enumerate": f"for {n.index}, ({n.x}, {n.y}) in enumerate({n.loader}):",
        "enumerate_index": f"for {n.index}, batch in enumerate({n.loader}):",
        RANGE: f"for {n.index} in range({N_BATCHES}):",
    }[p.unpacking]
    body: list[list[str]] = []  # statements, each one or more lines
    if p.unpacking == RANGE:  # the loop builds its own batches
        body += [[f"start = {n.index} * 8"], [f"{n.x}, {n.y} = X[start:start + 8], Y[start:start + 8]"]]
    elif p.unpacking == "batch":
        body.append([f"{n.x}, {n.y} = batch"])
    elif p.unpacking == "enumerate_index":
        body.append([f"{n.x}, {n.y} = batch[0], batch[1]"])
    if p.device and p.split_device:
        body += [[f"{n.x} = {n.x}.to(device)"], [f"{n.y} = {n.y}.to(device)"]]
    elif p.device:
        body.append([f"{n.x}, {n.y} = {n.x}.to(device), {n.y}.to(device)"])
    if p.zero_grad == "before_forward":
        body.append([zero_grad_call(p)])
    loss_call = "F.cross_entropy" if p.functional_loss else n.criterion
    if p.inline_forward:
        forward = [[f"{n.loss} = {loss_call}({n.model}({n.x}), {n.y})"]]
    else:
        forward = [[f"{n.output} = {n.model}({n.x})"], [f"{n.loss} = {loss_call}({n.output}, {n.y})"]]
    if p.amp is not None:  # one statement: the autocast block around forward and loss
        body.append([f"with {p.autocast}:"] + ["    " + line for statement in forward for line in statement])
    else:
        body += forward
    if p.zero_grad == "before_backward":
        body.append([zero_grad_call(p)])
    if p.accumulation is not None:
        body.append(
            [
                f"{n.loss} /= {p.accumulates}"
                if p.division == "augmented"
                else f"{n.loss} = {n.loss} / {p.accumulates}"
            ]
        )
    body.append([f"{n.scaler}.scale({n.loss}).backward()" if p.amp is not None else f"{n.loss}.backward()"])
    if p.accumulation is not None:  # one statement: the condition around the whole step
        condition = f"({n.index} + 1) % {p.accumulates} == 0"
        if p.accumulation == "every_or_last":
            condition += f" or {n.index} + 1 == {batch_count(p, n)}"
        body.append([f"if {condition}:"] + ["    " + line for s in step_statements(p) for line in s])
    else:
        body += step_statements(p)
    if p.running_total:
        body.append([f"{n.total} += {n.loss}.item()"])
    if p.print_every is not None:
        epoch = (
            "epoch {epoch} "
            if p.nesting != "single" and (p.nesting != "function" or p.epoch_argument)
            else ""
        )
        message = f'print(f"{epoch}loss {{{n.loss}.item():.4f}}")'
        if p.unpacking.startswith("enumerate") or p.unpacking == RANGE:
            body.append([f"if {n.index} % {p.print_every} == 0:", "    " + message])
        else:
            body.append([message])
    assert len(body) <= GAPS
    lines = []
    for k, statement in enumerate(body):
        if k > 0 and p.separators[k - 1] is not None:
            lines.append(p.separators[k - 1])
        comment = p.trailing[k]
        lines.extend(statement[:-1] + [statement[-1] + (f"  {comment}" if comment else "")])
    if p.separators[-1] not in (None, ""):  # a comment after the last statement, still in the body
        lines.append(p.separators[-1])
    return [header] + indent(lines, 1)


def epoch_loop(p: Program) -> str:
    bounds = f"{p.epochs}" if p.first_epoch == 0 else f"1, {p.epochs} + 1"
    return f"for epoch in range({bounds}):"


def epoch_scheduler_step(p: Program, n: Names) -> list[str]:
    return [f"{n.scheduler}.step()"] if p.scheduler in PER_EPOCH_SCHEDULERS else []


def epoch_lines(p: Program, n: Names) -> list[str]:
    """One epoch: the running total around the batch loop, then a per-epoch scheduler step
    (module and main nestings)."""
    if not p.running_total:
        return loop_lines(p) + epoch_scheduler_step(p, n) + epoch_tail(p, n)
    return (
        [f"{n.total} = 0.0"]
        + loop_lines(p)
        + epoch_scheduler_step(p, n)
        + [f'print(f"epoch {{epoch}}: {{{n.total} / {batch_count(p, n)}:.4f}}")']
        + epoch_tail(p, n)
    )


def setup_lines(p: Program, n: Names) -> list[str]:
    """Data, model, criterion, optimizer, scheduler and scaler, named after n."""
    model = (
        f"{p.model_class}()"
        if p.model_class
        else "nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))"
    )
    optim = "optim" if p.optim_alias else "torch.optim"
    lines = [
        f"X = torch.randn({p.samples}, 8)",
        f"Y = torch.randint(0, 3, ({p.samples},))",
        f"{N_BATCHES} = len(X) // 8"
        if p.unpacking == RANGE
        else f"{n.loader} = DataLoader(TensorDataset(X, Y), batch_size=8, shuffle=False)",
    ]
    if p.evaluation is not None:
        lines.append(
            f"{VAL_LOADER} = DataLoader(TensorDataset(torch.randn(16, 8), torch.randint(0, 3, (16,))), "
            "batch_size=8)"
        )
    lines.append(f"{n.model} = {model}" + (".to(device)" if p.device else ""))
    if not p.functional_loss:
        lines.append(f"{n.criterion} = nn.CrossEntropyLoss()")
    lines.append(f"{n.optimizer} = {optim}." + p.optimizer_call.format(params=f"{n.model}.parameters()"))
    if p.scheduler is not None:
        epochs = 1 if p.nesting == "single" else p.epochs
        call = SCHEDULER_CALLS[p.scheduler].format(
            optimizer=n.optimizer, epochs=epochs, batches=batch_count(p, n)
        )
        lines.append(f"{n.scheduler} = {optim}.lr_scheduler.{call}")
    if p.amp is not None:
        lines.append(f"{n.scaler} = {SCALER_CALLS[p.amp]}")
    if p.checkpoint:
        lines.append(f'path = "{CHECKPOINT}"')
    if p.collision is not None:
        lines.append(f'{p.collision} = "user {p.collision}"')
    return lines


# -- after the loop ---------------------------------------------------------------------------
def evaluate_call(p: Program, n: Names, arguments: str) -> str:
    """A call of evaluate(): with the model and the loader first where it is no closure over globals."""
    return (
        f"evaluate({arguments})"
        if p.nesting == "module"
        else f"evaluate({n.model}, {VAL_LOADER}, {arguments})"
    )


def evaluate_function(p: Program) -> list[str]:
    """evaluate(epoch=0, verbose=True): the mean validation loss, printed when verbose; over the
    module's model and loader, or (main() holds them) over its parameters."""
    model = p.names.model if p.nesting == "module" else "model"
    params = (
        "epoch=0, verbose=True" if p.nesting == "module" else f"model, {VAL_LOADER}, epoch=0, verbose=True"
    )
    return [
        f"def evaluate({params}):",
        f"    {model}.eval()",
        "    val_total = 0.0",
        "    with torch.no_grad():",
        f"        for vx, vy in {VAL_LOADER}:",
        f'            val_total += nn.functional.cross_entropy({model}(vx), vy, reduction="sum").item()',
        f"    val_total /= len({VAL_LOADER}.dataset)",
        "    if verbose:",
        '        print(f"  val loss after epoch {epoch}: {val_total:.4f}")',
        f"    {model}.train()",
        "    return val_total",
    ]


def epoch_tail(p: Program, n: Names) -> list[str]:
    """What the epoch code does after the batch loop (and the per-epoch print): sets `note`, saves a
    checkpoint through an open file, reads the colliding name, evaluates."""
    blocks: list[list[str]] = [[], [], [], []]
    if p.note:
        blocks[0].append('note = f"epoch {epoch} done"')
    if p.checkpoint:
        blocks[1] += ['with open(path, "wb") as f:', f"    torch.save({n.model}.state_dict(), f)"]
    if p.collision_in_epoch:
        blocks[2].append(f'print(f"{{{p.collision}}} at epoch {{epoch}}")')
    if p.print_before_eval:
        blocks[3].append('print(f"epoch {epoch} evaluating")')
    if p.evaluation == "call":
        blocks[3].append(evaluate_call(p, n, "epoch"))
    elif p.evaluation == "assign":
        blocks[3] += [
            f"val_loss = {evaluate_call(p, n, 'epoch')}",
            'print(f"epoch {epoch}: val loss {val_loss:.4f}")',
        ]
    return [line for k in (p.tail_order or range(len(blocks))) for line in blocks[k]]


def after_lines(p: Program, n: Names) -> list[str]:
    """After training: the loop's variables, `note` before and after it is rebound, the colliding
    name, the checkpoint reopened, a last evaluation without its print."""
    reads = {
        "index": f'print(f"last batch {{{p.names.index}}}")',
        "epoch": 'print(f"last epoch {epoch}")',
        "loss": f'print(f"last loss {{{p.names.loss}.item():.4f}}")',
    }
    rebinds = {
        "index": f"{p.names.index} = -1",
        "epoch": "epoch = -1",
        "loss": f"{p.names.loss} = torch.tensor(0.0)",
    }
    lines = [reads[r] for r in p.after_reads]
    if p.rebind_reads:
        lines += [line for r in p.after_reads for line in (rebinds[r], reads[r])]
    if p.note:
        lines += ['print(f"note: {note}")', 'note = "reset"', 'print(f"note: {note}")']
    if p.collision is not None:
        lines.append(f'print(f"{p.collision}: {{{p.collision}}}")')
    if p.checkpoint:
        lines += [
            'with open(path, "rb") as f:',
            "    state = torch.load(f)",
            f"{n.model}.load_state_dict(state)",
            'print(f"reloaded {len(state)} tensors")',
        ]
    if p.evaluation is not None:
        lines.append(f'print(f"final val loss {{{evaluate_call(p, n, "verbose=False")}:.4f}}")')
    return lines


def render(p: Program) -> str:
    n, o = p.names, p.outer
    lines = ["import torch", "import torch.nn as nn"]
    if p.functional_loss:
        lines.append("import torch.nn.functional as F")
    if p.optim_alias:
        lines.append("import torch.optim as optim")
    lines += ["from torch.utils.data import DataLoader, TensorDataset", ""]
    if p.accumulation is not None and p.accum_name is not None:
        lines += [f"{p.accum_name} = {p.accum_steps}", ""]
    if p.model_class:
        lines += [
            "",
            f"class {p.model_class}(nn.Module):",
            "    def __init__(self):",
            "        super().__init__()",
            "        self.fc1 = nn.Linear(8, 16)",
            "        self.fc2 = nn.Linear(16, 3)",
            "",
            "    def forward(self, x):",
            "        return self.fc2(torch.relu(self.fc1(x)))",
            "",
            "",
        ]
    lines.append("torch.manual_seed(0)")
    if p.device:
        lines.append('device = torch.device("cpu")')
    if p.amp is not None:
        lines.append("use_amp = torch.cuda.is_available()  # mixed precision on a GPU only")
    lines.append("")
    train_mode = [f"{n.model}.train()"] if p.train_mode else []
    if p.nesting in ("module", "single"):
        lines += setup_lines(p, n) + train_mode + [""]
        if p.evaluation is not None:
            lines += ["", *evaluate_function(p), "", ""]
        if p.nesting == "single":
            lines += loop_lines(p)
        else:
            lines += [epoch_loop(p)] + indent(epoch_lines(p, n), 1)
        lines += ["", 'print("done")'] + after_lines(p, n)
    else:
        if p.evaluation is not None:
            lines += ["", *evaluate_function(p), ""]
        if p.nesting == "function":
            epoch = ["epoch"] if p.epoch_argument else []
            per_batch = p.scheduler is not None and p.scheduler not in PER_EPOCH_SCHEDULERS
            criterion = [] if p.functional_loss else [n.criterion]
            extras = ([n.scheduler] if per_batch else []) + ([n.scaler] if p.amp else [])
            params = ", ".join([n.model, n.loader, n.optimizer] + criterion + extras + epoch)
            criterion = [] if p.functional_loss else [o.criterion]
            extras = ([o.scheduler] if per_batch else []) + ([o.scaler] if p.amp else [])
            args = ", ".join([o.model, o.loader, o.optimizer] + criterion + extras + epoch)
            body = train_mode + ([f"{n.total} = 0.0"] if p.running_total else []) + loop_lines(p)
            if p.running_total:
                body.append(f"return {n.total} / len({n.loader})")
            lines += ["", f"def {p.train_function}({params}):"] + indent(body, 1) + ["", ""]
            call = f"{p.train_function}({args})"
            if not p.running_total:
                per_epoch = [call]
            elif p.result_use == "inline":
                per_epoch = [f'print(f"epoch {{epoch}}: {{{call}:.4f}}")']
            else:
                per_epoch = [f"avg_loss = {call}", 'print(f"epoch {epoch}: {avg_loss:.4f}")']
            per_epoch[1:1] = epoch_scheduler_step(p, o)  # right after the call
            main_body = setup_lines(p, o) + ["", epoch_loop(p)] + indent(per_epoch + epoch_tail(p, o), 1)
            main_body += after_lines(p, o)
        else:
            main_body = (
                setup_lines(p, n)
                + train_mode
                + ["", epoch_loop(p)]
                + indent(epoch_lines(p, n), 1)
                + after_lines(p, n)
            )
        lines += (
            ([] if p.nesting == "function" else [""])
            + ["def main():"]
            + indent(main_body, 1)
            + ["", "", 'if __name__ == "__main__":', "    main()"]
        )
    return "\n".join(lines) + "\n"


# -- a covering set -------------------------------------------------------------------------
SHAPES = [
    (nesting, unpacking, zero_grad)
    for nesting in NESTINGS
    for unpacking in UNPACKINGS
    for zero_grad in ZERO_GRADS
]


def idiom_pairs(idioms: dict) -> set[tuple]:
    """The pairs of values of two step factors that a combination holds."""
    return {(a, idioms[a], b, idioms[b]) for a, b in itertools.combinations(STEP_FACTORS, 2)}


def step_design() -> list[dict]:
    """One combination of the step's idioms per shape of SHAPES, such that the covering set holds
    every pair of values of two factors that some shape takes (accumulation fits 8 shapes only, a
    per-epoch scheduler no single pass): greedy, shape after shape, the combination that holds the
    most pairs not held yet, then the pairs held least often (deterministic). The shapes that take
    the fewest combinations (those with accumulation) choose first, while their pairs are still open."""
    combinations = [dict(zip(STEP_FACTORS, values)) for values in itertools.product(*STEP_FACTORS.values())]
    uncovered = set().union(*(idiom_pairs(c) for c in combinations if any(combines(s, c) for s in SHAPES)))
    held: dict[tuple, int] = {}
    design: dict[int, dict] = {}

    def gain(c: dict) -> tuple:
        return len(idiom_pairs(c) & uncovered), sum(1 / (1 + held.get(pair, 0)) for pair in idiom_pairs(c))

    def choices(shape) -> list[dict]:
        return [c for c in combinations if combines(shape, c)]

    for number in sorted(
        range(len(SHAPES)), key=lambda k: (len(set().union(*map(idiom_pairs, choices(SHAPES[k])))), k)
    ):
        best = max(choices(SHAPES[number]), key=gain)
        design[number] = best
        uncovered -= idiom_pairs(best)
        for pair in idiom_pairs(best):
            held[pair] = held.get(pair, 0) + 1
    return [design[k] for k in range(len(SHAPES))]


STEP_DESIGN = step_design()


def shaped(k: int) -> Program:
    """The k-th program of a deterministic covering set: each (nesting, unpacking, zero_grad) of
    SHAPES once, with the step's idioms of STEP_DESIGN[k], the other choices rotated with k so that
    the set spreads over them too. Random draws of a few dozen programs leave some of the 48 shapes
    (and of the pairs of the step's idioms) out; this set does not."""
    nesting, unpacking, zero_grad = SHAPES[k]

    def pick(pool, offset=0):
        return pool[(k + offset) % len(pool)]

    def bit(b: int) -> bool:
        return bool((k * 7 + 3) >> b & 1)

    def named(offset: int) -> Names:
        x, y = pick(BATCH_PAIRS, offset)
        return Names(
            model=pick(MODELS, offset),
            optimizer=pick(OPTIMIZERS, offset + 1),
            loss=pick(LOSSES, offset),
            loader=pick(LOADERS, offset + 2),
            criterion=pick(CRITERIA, offset + 3),
            x=x,
            y=y,
            output=pick(OUTPUTS, offset),
            index=pick(INDICES, offset),
            total=pick(TOTALS, offset),
            scheduler=pick(SCHEDULER_NAMES, offset + 1),
            scaler=pick(SCALER_NAMES, offset),
        )

    gaps = [None, "", *COMMENTS]
    inner = named(0)
    return Program(
        names=inner,
        outer=named(k // 3) if nesting == "function" else inner,
        model_class=pick([None, *CLASSES]),
        unpacking=unpacking,
        zero_grad=zero_grad,
        zero_grad_on_model=bit(0),
        nesting=nesting,
        device=bit(1),
        functional_loss=bit(2),
        optim_alias=bit(3),
        optimizer_call=pick(OPTIMIZER_CALLS),
        train_mode=bit(4),
        print_every=pick([None, 1, 2, 3]),
        running_total=bit(5) and nesting != "single",
        separators=tuple(gaps[(k * 3 + i) % len(gaps)] if (k + i) % 3 else None for i in range(GAPS)),
        trailing=tuple(pick(TRAILING, i) if (k + i) % 4 == 0 else None for i in range(GAPS)),
        inline_forward=bit(1) != bit(3),
        split_device=bit(0) != bit(5),
        epoch_argument=bit(6),
        first_epoch=k % 2,
        samples=pick([32, 48, 64]),
        epochs=1 + k % 2,
        train_function=pick(TRAIN_FUNCTIONS),
        result_use="assign",
        clip_module=pick(CLIP_MODULES, k // 2),
        tight_clip=bit(3) != bit(6),
        autocast=AUTOCASTS[k // 2 % len(AUTOCASTS)],
        accum_steps=pick([2, 4], k // 2),
        accum_name=pick([None, *ACCUM_NAMES]),
        division=pick(DIVISIONS, k // 3),
        **STEP_DESIGN[k],
    )
