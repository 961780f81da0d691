"""A grammar of hand-written PyTorch training loops, as hypothesis strategies.

`programs()` draws a `Program` (the choices) and renders it into a complete, runnable script:
synthetic data in a TensorDataset, a model, an optimizer and a loop in one of the idioms people
write. The choices cover the order of the step calls, the batch unpacking style, where the loop
lives (module level, a per-epoch function, main()), the names, `.to(device)`, comments and blank
lines between statements, end-of-line comments, a running-loss total and progress prints.
`shaped(k)` builds the same kind of program deterministically, one for each shape of SHAPES.
"""
from __future__ import annotations

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
CLASSES = ["Net", "MLP", "Classifier"]
TRAIN_FUNCTIONS = ["train", "train_one_epoch", "run_epoch"]
COMMENTS = ["# forward pass", "# compute the loss", "# update the weights", "# TODO: try a scheduler",
            "# NOTE: batches are (features, labels)", "#"]
TRAILING = ["# noqa: E501", "# clear old gradients", "# type: ignore", "# (B, 3)"]

UNPACKINGS = ["pair", "batch", "enumerate", "enumerate_index"]
# where optimizer.zero_grad() goes, relative to forward / backward / step
ZERO_GRADS = ["before_forward", "before_backward", "after_step"]
# module: `for epoch` at module level; function: a per-epoch train() called from main();
# main: the whole loop inside main(); single: one pass at module level, no epoch loop
NESTINGS = ["module", "function", "main", "single"]
# how main() calls the per-epoch train function when it returns the mean loss: as an assignment
# (`avg = train(...)`, then a print), or inside the f-string of the print, which loopshift does not
# convert (LS001: the function must be called exactly once, as a statement)
RESULT_USES = ["assign", "inline"]
OPTIMIZER_CALLS = ["SGD({params}, lr=0.1)", "SGD({params}, lr=0.05, momentum=0.9)", "Adam({params}, lr=1e-3)"]


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
    set_to_none: bool  # zero_grad(set_to_none=True)
    split_device: bool  # x = x.to(device) and y = y.to(device) on two lines
    epoch_argument: bool  # nesting == "function": the epoch is passed on and printed by the function
    first_epoch: int  # range(E) or range(1, E + 1)
    samples: int
    epochs: int
    train_function: str
    result_use: str  # see RESULT_USES; only matters for nesting == "function" with running_total

    @property
    def convertible(self) -> bool:
        """Whether loopshift is expected to convert the loop with no diagnostic."""
        return not (self.nesting == "function" and self.running_total and self.result_use == "inline")

    def render(self) -> str:
        return render(self)


@st.composite
def names(draw) -> Names:
    x, y = draw(st.sampled_from(BATCH_PAIRS))
    return Names(model=draw(st.sampled_from(MODELS)), optimizer=draw(st.sampled_from(OPTIMIZERS)),
                 loss=draw(st.sampled_from(LOSSES)), loader=draw(st.sampled_from(LOADERS)),
                 criterion=draw(st.sampled_from(CRITERIA)), x=x, y=y, output=draw(st.sampled_from(OUTPUTS)),
                 index=draw(st.sampled_from(INDICES)), total=draw(st.sampled_from(TOTALS)))


@st.composite
def programs(draw) -> Program:
    inner = draw(names())
    nesting = draw(st.sampled_from(NESTINGS))
    # the longest body: unpack, to(device), zero_grad, forward, loss, backward, step, total, print
    separators = draw(st.lists(st.one_of(st.none(), st.just(""), st.sampled_from(COMMENTS)),
                               min_size=10, max_size=10))
    trailing = draw(st.lists(st.one_of(st.none(), st.sampled_from(TRAILING)), min_size=10, max_size=10))
    return Program(
        names=inner,
        outer=draw(names()) if nesting == "function" else inner,
        model_class=draw(st.one_of(st.none(), st.sampled_from(CLASSES))),
        unpacking=draw(st.sampled_from(UNPACKINGS)),
        zero_grad=draw(st.sampled_from(ZERO_GRADS)),
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
        set_to_none=draw(st.booleans()),
        split_device=draw(st.booleans()),
        epoch_argument=draw(st.booleans()),
        first_epoch=draw(st.integers(0, 1)),
        samples=draw(st.sampled_from([32, 48, 64])),
        epochs=draw(st.integers(1, 2)),
        train_function=draw(st.sampled_from(TRAIN_FUNCTIONS)),
        result_use=draw(st.sampled_from(RESULT_USES)),
    )


# -- rendering ------------------------------------------------------------------------------
def indent(lines: list[str], depth: int) -> list[str]:
    return [("    " * depth + line) if line else "" for line in lines]


def loop_lines(p: Program) -> list[str]:
    """The `for` statement over the batches, at depth 0."""
    n = p.names
    header = {
        "pair": f"for {n.x}, {n.y} in {n.loader}:",
        "batch": f"for batch in {n.loader}:",
        "enumerate": f"for {n.index}, ({n.x}, {n.y}) in enumerate({n.loader}):",
        "enumerate_index": f"for {n.index}, batch in enumerate({n.loader}):",
    }[p.unpacking]
    body: list[list[str]] = []  # statements, each one or more lines
    if p.unpacking == "batch":
        body.append([f"{n.x}, {n.y} = batch"])
    elif p.unpacking == "enumerate_index":
        body.append([f"{n.x}, {n.y} = batch[0], batch[1]"])
    if p.device and p.split_device:
        body += [[f"{n.x} = {n.x}.to(device)"], [f"{n.y} = {n.y}.to(device)"]]
    elif p.device:
        body.append([f"{n.x}, {n.y} = {n.x}.to(device), {n.y}.to(device)"])
    clears = n.model if p.zero_grad_on_model else n.optimizer
    zero_grad = [f"{clears}.zero_grad(set_to_none=True)" if p.set_to_none else f"{clears}.zero_grad()"]
    if p.zero_grad == "before_forward":
        body.append(zero_grad)
    loss_call = "F.cross_entropy" if p.functional_loss else n.criterion
    if p.inline_forward:
        body.append([f"{n.loss} = {loss_call}({n.model}({n.x}), {n.y})"])
    else:
        body.append([f"{n.output} = {n.model}({n.x})"])
        body.append([f"{n.loss} = {loss_call}({n.output}, {n.y})"])
    if p.zero_grad == "before_backward":
        body.append(zero_grad)
    body.append([f"{n.loss}.backward()"])
    body.append([f"{n.optimizer}.step()"])
    if p.zero_grad == "after_step":
        body.append(zero_grad)
    if p.running_total:
        body.append([f"{n.total} += {n.loss}.item()"])
    if p.print_every is not None:
        epoch = "epoch {epoch} " if p.nesting != "single" and (p.nesting != "function" or p.epoch_argument) else ""
        message = f'print(f"{epoch}loss {{{n.loss}.item():.4f}}")'
        if p.unpacking.startswith("enumerate"):
            body.append([f"if {n.index} % {p.print_every} == 0:", "    " + message])
        else:
            body.append([message])
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


def epoch_lines(p: Program, n: Names) -> list[str]:
    """One epoch: the running total around the batch loop (module and main nestings)."""
    if not p.running_total:
        return loop_lines(p)
    return ([f"{n.total} = 0.0"] + loop_lines(p)
            + [f'print(f"epoch {{epoch}}: {{{n.total} / len({n.loader}):.4f}}")'])


def setup_lines(p: Program, n: Names) -> list[str]:
    """Data, model, criterion and optimizer, named after n."""
    model = f"{p.model_class}()" if p.model_class else "nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))"
    optim = "optim" if p.optim_alias else "torch.optim"
    lines = [
        f"X = torch.randn({p.samples}, 8)",
        f"Y = torch.randint(0, 3, ({p.samples},))",
        f"{n.loader} = DataLoader(TensorDataset(X, Y), batch_size=8, shuffle=False)",
        f"{n.model} = {model}" + (".to(device)" if p.device else ""),
    ]
    if not p.functional_loss:
        lines.append(f"{n.criterion} = nn.CrossEntropyLoss()")
    lines.append(f"{n.optimizer} = {optim}." + p.optimizer_call.format(params=f"{n.model}.parameters()"))
    return lines


def render(p: Program) -> str:
    n, o = p.names, p.outer
    lines = ["import torch", "import torch.nn as nn"]
    if p.functional_loss:
        lines.append("import torch.nn.functional as F")
    if p.optim_alias:
        lines.append("import torch.optim as optim")
    lines += ["from torch.utils.data import DataLoader, TensorDataset", ""]
    if p.model_class:
        lines += ["", f"class {p.model_class}(nn.Module):",
                  "    def __init__(self):",
                  "        super().__init__()",
                  "        self.fc1 = nn.Linear(8, 16)",
                  "        self.fc2 = nn.Linear(16, 3)",
                  "",
                  "    def forward(self, x):",
                  "        return self.fc2(torch.relu(self.fc1(x)))",
                  "", ""]
    lines.append("torch.manual_seed(0)")
    if p.device:
        lines.append('device = torch.device("cpu")')
    lines.append("")
    train_mode = [f"{n.model}.train()"] if p.train_mode else []
    if p.nesting in ("module", "single"):
        lines += setup_lines(p, n) + train_mode + [""]
        if p.nesting == "single":
            lines += loop_lines(p)
        else:
            lines += [epoch_loop(p)] + indent(epoch_lines(p, n), 1)
        lines += ["", 'print("done")']
    else:
        if p.nesting == "function":
            epoch = ["epoch"] if p.epoch_argument else []
            criterion = [] if p.functional_loss else [n.criterion]
            params = ", ".join([n.model, n.loader, n.optimizer] + criterion + epoch)
            criterion = [] if p.functional_loss else [o.criterion]
            args = ", ".join([o.model, o.loader, o.optimizer] + criterion + epoch)
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
            main_body = setup_lines(p, o) + ["", epoch_loop(p)] + indent(per_epoch, 1)
        else:
            main_body = (setup_lines(p, n) + train_mode + ["", epoch_loop(p)]
                         + indent(epoch_lines(p, n), 1))
        lines += ([] if p.nesting == "function" else [""]) + ["def main():"] + indent(main_body, 1) + ["", "",
                  'if __name__ == "__main__":', "    main()"]
    return "\n".join(lines) + "\n"


# -- a covering set -------------------------------------------------------------------------
SHAPES = [(nesting, unpacking, zero_grad) for nesting in NESTINGS for unpacking in UNPACKINGS
          for zero_grad in ZERO_GRADS]


def shaped(k: int) -> Program:
    """The k-th program of a deterministic covering set: each (nesting, unpacking, zero_grad) of
    SHAPES once, the other choices rotated with k so that the set spreads over them too. Random
    draws of a few dozen programs leave some of the 48 shapes out; this set does not."""
    nesting, unpacking, zero_grad = SHAPES[k]

    def pick(pool, offset=0):
        return pool[(k + offset) % len(pool)]

    def bit(b: int) -> bool:
        return bool((k * 7 + 3) >> b & 1)

    def named(offset: int) -> Names:
        x, y = pick(BATCH_PAIRS, offset)
        return Names(model=pick(MODELS, offset), optimizer=pick(OPTIMIZERS, offset + 1), loss=pick(LOSSES, offset),
                     loader=pick(LOADERS, offset + 2), criterion=pick(CRITERIA, offset + 3), x=x, y=y,
                     output=pick(OUTPUTS, offset), index=pick(INDICES, offset), total=pick(TOTALS, offset))

    gaps = [None, "", *COMMENTS]
    inner = named(0)
    return Program(
        names=inner, outer=named(k // 3) if nesting == "function" else inner,
        model_class=pick([None, *CLASSES]), unpacking=unpacking, zero_grad=zero_grad,
        zero_grad_on_model=bit(0), nesting=nesting, device=bit(1), functional_loss=bit(2), optim_alias=bit(3),
        optimizer_call=pick(OPTIMIZER_CALLS), train_mode=bit(4), print_every=pick([None, 1, 2, 3]),
        running_total=bit(5) and nesting != "single",
        separators=tuple(gaps[(k * 3 + i) % len(gaps)] if (k + i) % 3 else None for i in range(10)),
        trailing=tuple(pick(TRAILING, i) if (k + i) % 4 == 0 else None for i in range(10)),
        inline_forward=bit(1) != bit(3), set_to_none=bit(2) != bit(4), split_device=bit(0) != bit(5),
        epoch_argument=bit(6), first_epoch=k % 2, samples=pick([32, 48, 64]), epochs=1 + k % 2,
        train_function=pick(TRAIN_FUNCTIONS), result_use="assign",
    )
