"""A grammar of training scripts whose update sits at varying depths, as hypothesis strategies.

The update (zero_grad, forward, loss, backward, step) is written in the batch loop itself, in a
helper function the loop calls (reading the module's globals, or taking the model, optimizer and
criterion as arguments), or in a method of a small trainer class (`_run_batch` called from
`_run_epoch`, called from `fit`). The loops live at module level, in `main()`, or in a per-epoch
function; a block may sit around them: `if __name__ == "__main__":`, `try: ... except
torch.cuda.OutOfMemoryError:`, `with tqdm(total=...) as pbar:`. The helper's value reaches the
loop as a statement, an assignment, or `total += step(...)`. Every script prints its mean loss
per epoch (`epoch N: loss X`), which is what a converted script must print too.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

SITES = ["loop", "helper_globals", "helper_arguments", "method"]
CALLS = ["statement", "assign", "augmented"]  # how the loop takes the helper's value
NESTINGS = ["module", "main", "epoch_function"]
BLOCKS = [None, "main_guard", "try", "tqdm"]
ZERO_GRADS = ["before_forward", "after_step"]
HELPERS = ["train_step", "update", "step_fn"]
PRINTED = r"epoch \d+: loss"


@dataclass(frozen=True)
class DepthProgram:
    site: str
    call: str
    nesting: str
    block: str | None
    zero_grad: str
    helper: str
    returns_item: bool  # the helper returns loss.item() (else the loss tensor, .item() at the caller)
    epochs: int

    def render(self) -> str:
        return render(self)


@st.composite
def depth_programs(draw) -> DepthProgram:
    site = draw(st.sampled_from(SITES))
    nesting = "module" if site == "method" else draw(st.sampled_from(NESTINGS))
    return DepthProgram(
        site=site,
        call=draw(st.sampled_from(CALLS)) if site != "loop" else "statement",
        nesting=nesting,
        block=draw(st.sampled_from([b for b in BLOCKS if not (site == "method" and b == "tqdm")])),
        zero_grad=draw(st.sampled_from(ZERO_GRADS)),
        helper=draw(st.sampled_from(HELPERS)),
        returns_item=draw(st.booleans()),
        epochs=draw(st.integers(1, 2)),
    )


HEADER = """\
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from tqdm import tqdm

torch.manual_seed(0)
X, Y = torch.randn(64, 4), torch.randint(0, 3, (64,))
loader = DataLoader(TensorDataset(X, Y), batch_size=8, shuffle=True)
model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
criterion = nn.CrossEntropyLoss()
EPOCHS = {epochs}
"""


def update_lines(p: DepthProgram, model: str, optimizer: str) -> list[str]:
    """zero_grad, forward and loss, backward, step, in the program's order."""
    zero = [f"{optimizer}.zero_grad()"]
    lines = zero if p.zero_grad == "before_forward" else []
    lines += [f"loss = criterion({model}(x), y)", "loss.backward()", f"{optimizer}.step()"]
    return lines + (zero if p.zero_grad == "after_step" else [])


def indent(lines: list[str], depth: int = 1) -> list[str]:
    return [("    " * depth + line) if line else "" for line in lines]


def batch_body(p: DepthProgram, call: str) -> list[str]:
    """The batch loop's body: the update itself, or the call of the helper and the running total."""
    if p.site == "loop":
        return [*update_lines(p, "model", "optimizer"), "total += loss.item()"]
    value = call if p.returns_item else f"{call}.item()"
    if p.call == "augmented":
        return [f"total += {value}"]
    if p.call == "assign":
        return [f"loss = {call}", f"total += {'loss' if p.returns_item else 'loss.item()'}"]
    return [call, "total += 1.0"]  # the helper's value unused: the loop counts batches instead


def epoch_lines(p: DepthProgram, call: str) -> list[str]:
    """One epoch: the running total, the batch loop (under tqdm when so drawn), the print."""
    loop = ["for x, y in loader:", *indent(batch_body(p, call))]
    if p.block == "tqdm":
        loop = ["with tqdm(total=len(loader), disable=True) as pbar:", *indent([*loop, "    pbar.update(1)"])]
    return ["total = 0.0", *loop, 'print(f"epoch {epoch}: loss {total / len(loader):.4f}")']


def helper_definition(p: DepthProgram) -> list[str]:
    if p.site == "helper_globals":
        signature, model, optimizer = f"def {p.helper}(x, y):", "model", "optimizer"
    else:
        signature, model, optimizer = f"def {p.helper}(net, opt, x, y):", "net", "opt"
    returned = "loss.item()" if p.returns_item else "loss"
    return [signature, *indent([*update_lines(p, model, optimizer), f"return {returned}"]), "", ""]


def helper_call(p: DepthProgram) -> str:
    if p.site == "helper_globals":
        return f"{p.helper}(x, y)"
    return f"{p.helper}(model, optimizer, x, y)"


def render(p: DepthProgram) -> str:
    source = HEADER.format(epochs=p.epochs) + "\n\n"
    if p.site == "method":
        return source + render_method(p)
    if p.site != "loop":
        source += "\n".join(helper_definition(p)) + "\n"
    call = helper_call(p)
    epochs = ["for epoch in range(EPOCHS):"]
    if p.nesting == "epoch_function":
        source += "\n".join(["def train_epoch(epoch):", *indent(epoch_lines(p, call)), "", "", ""])
        epochs += indent(["train_epoch(epoch)"])
    else:
        epochs += indent(epoch_lines(p, call))
    training = guarded(p, epochs)
    if p.nesting == "main":
        source += "\n".join(["def main():", *indent(training), "", "", ""])
        training = ["main()"]
    if p.block == "main_guard":
        training = ['if __name__ == "__main__":', *indent(training)]
    return source + "\n".join(training) + "\n"


def guarded(p: DepthProgram, lines: list[str]) -> list[str]:
    if p.block != "try":
        return lines
    return ["try:", *indent(lines), "except torch.cuda.OutOfMemoryError:", *indent(['print("OOM")', "raise"])]


def render_method(p: DepthProgram) -> str:
    """A trainer class: `_run_batch` does the update, `_run_epoch` loops the batches, `fit` the epochs."""
    returned = "loss.item()" if p.returns_item else "loss"
    value = "self._run_batch(x, y)" if p.returns_item else "self._run_batch(x, y).item()"
    run_batch = [*update_lines(p, "self.model", "self.optimizer"), f"return {returned}"]
    run_epoch = [
        "total = 0.0",
        "for x, y in self.loader:",
        *indent([f"total += {value}"]),
        'print(f"epoch {epoch}: loss {total / len(self.loader):.4f}")',
    ]
    lines = [
        "class Learner:",
        *indent(
            [
                "def __init__(self, model, loader, optimizer):",
                *indent(["self.model = model", "self.loader = loader", "self.optimizer = optimizer"]),
                "",
                "def _run_batch(self, x, y):",
                *indent(run_batch),
                "",
                "def _run_epoch(self, epoch):",
                *indent(run_epoch),
                "",
                "def fit(self, epochs):",
                *indent(["for epoch in range(epochs):", *indent(["self._run_epoch(epoch)"])]),
            ]
        ),
        "",
        "",
    ]
    training = guarded(p, ["Learner(model, loader, optimizer).fit(EPOCHS)"])
    if p.block == "main_guard":
        training = ['if __name__ == "__main__":', *indent(training)]
    return "\n".join(lines + training) + "\n"
