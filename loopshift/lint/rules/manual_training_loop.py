"""LS101 manual-training-loop."""

from __future__ import annotations

from ..raw_loops import raw_training_loops
from ..rule import Context, Fix, Rule, attribute

MESSAGE = "manual training loop: Lightning can run it (`loopshift convert --diff` shows how, or why not)"


class ManualTrainingLoop(Rule):
    """
    ## What it does
    Finds training loops written by hand: a loop over batches that calls `loss.backward()`
    and `optimizer.step()`. These are the loops `loopshift convert` works on.

    ## Why is this bad?
    Lightning's Trainer owns that loop: devices, mixed precision, gradient accumulation and
    clipping, checkpoints, logging, validation and multi-GPU training come with it, instead of
    being written again, one bug at a time, in every script.

    ## Example
    ```python
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = DataLoader(TensorDataset(torch.randn(8, 4), torch.randn(8, 1)), batch_size=4)

    for epoch in range(3):
        for x, y in loader:
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            optimizer.step()
    ```

    ## Use instead
    ```python
    import lightning as L
    import torch
    from torch.utils.data import DataLoader, TensorDataset


    class LitModel(L.LightningModule):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.model(x), y)
            self.log("train_loss", loss)
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.model.parameters(), lr=0.1)


    model = torch.nn.Linear(4, 1)
    loader = DataLoader(TensorDataset(torch.randn(8, 4), torch.randn(8, 1)), batch_size=4)
    L.Trainer(max_epochs=3).fit(LitModel(model), loader)
    ```

    ## Fix
    `--fix` is `loopshift convert --in-place`: every loop convert understands becomes a
    LightningModule and a Trainer. A file whose conversion would leave a `# TODO(loopshift)`
    (a loop convert cannot take over safely; `loopshift convert --diff` says why) is fixed only
    with `--unsafe-fixes`; the fix is skipped when any loop of the file carries a `# noqa`.

    The rule is decided on the standard library's `ast`, without the converter: a loop is
    reported when it holds a `loss.backward()` statement and updates parameters
    (`optimizer.step()`, `zero_grad()`, or `p -= lr * p.grad` by hand), outside a LightningModule.
    """

    code = "LS101"
    name = "manual-training-loop"
    summary = "A hand-written training loop the Lightning Trainer can own"
    fixable = True
    needs = (attribute("backward"),)
    VALID = [
        """
        import torch

        def evaluate(model, loader):
            with torch.no_grad():
                return [model(x) for x, _ in loader]
        """,
        """
        import torch

        def step(model, optimizer, x, y):  # one step, no loop
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            optimizer.step()
        """,
        """
        import torch

        def gradients(model, inputs):  # backward in a loop, but nothing steps: not training
            for x in inputs:
                model(x).sum().backward(retain_graph=True)
            return [p.grad for p in model.parameters()]
        """,
    ]
    INVALID = [
        """
        import torch
        from torch.utils.data import DataLoader, TensorDataset

        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.Adam(model.parameters())
        loader = DataLoader(TensorDataset(torch.randn(8, 4), torch.randn(8, 1)))
        for x, y in loader:
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            optimizer.step()
        """,
        """
        import torch

        def train(model, loader, optimizer, step_every):
            for i, (x, y) in enumerate(loader):
                loss = model(x).sub(y).pow(2).mean()
                loss.backward()
                if i % step_every == 0:  # stepped every few batches: still a raw loop
                    optimizer.step()
                    optimizer.zero_grad()
        """,
    ]

    def check_syntax(self, facts):
        facts = facts.lenient  # decided on ast alone
        loops = raw_training_loops(facts)
        return [facts.finding(self, facts.bare_span(loop), MESSAGE, fixable=True) for loop in loops]

    def check(self, context: Context):
        from ...convert import convert_source  # the converter loads libcst: only once a file is parsed
        from ..engine import UnsafeFix

        def rewrite(source: str) -> str:
            """The conversion, when convert would write it cleanly; one that leaves TODOs is unsafe."""
            result = convert_source(source, context.target, context.path)
            if result.diagnostics:
                codes = ", ".join(sorted({d.code for d in result.diagnostics}))
                raise UnsafeFix(result.code, f"the conversion would leave TODOs ({codes})")
            return result.code

        fix = Fix(rewrite=rewrite)  # one conversion of the whole file, shared by its loops
        for finding in self.check_syntax(context.syntax) if context.syntax else ():
            context.fixes[finding] = fix
            yield finding
