"""LS102 manual-evaluation-loop."""

from __future__ import annotations

import ast

from ... import torch_names
from ..rule import Context, Rule
from ..syntax import in_source_order, may_turn_off_gradients

NO_GRAD = frozenset(
    f"torch.{where}{name}"
    for where in ("", "autograd.", "autograd.grad_mode.")
    for name in ("no_grad", "inference_mode")
)


class ManualEvaluationLoop(Rule):
    """
    ## What it does
    Finds evaluation loops written by hand: a loop over a data loader under `torch.no_grad()`
    or `torch.inference_mode()` (a `with` block or a decorated function), in a file that does
    not use Lightning yet.

    A loader is an iterable built by `torch.utils.data.DataLoader` (followed through names and
    function parameters), or, where its origin cannot be traced, a name that says "loader".

    ## Why is this bad?
    Lightning runs evaluation as `validation_step` / `test_step`: under inference mode, on the
    right device, at the interval you choose, with metrics averaged and logged across batches
    and processes. A hand-written loop does each of these by hand, and usually forgets one
    (`model.eval()`, the sum over processes, the per-sample mean).

    ## Example
    ```python
    import torch

    def evaluate(model, val_loader):
        model.eval()
        total = 0.0
        with torch.no_grad():
            for x, y in val_loader:
                total += torch.nn.functional.mse_loss(model(x), y).item()
        return total / len(val_loader)
    ```

    ## Use instead
    ```python
    import lightning as L
    import torch


    class LitModel(L.LightningModule):
        def validation_step(self, batch, batch_idx):
            x, y = batch
            self.log("val_loss", torch.nn.functional.mse_loss(self(x), y))
    ```
    and `trainer.validate(model, val_loader)`, or `val_dataloaders=` in `trainer.fit`.
    """

    code = "LS102"
    name = "manual-evaluation-loop"
    summary = "A hand-written evaluation loop over a data loader under no_grad / inference_mode"
    needs = ("no_grad|inference_mode", "(?i:loader)")  # the loader test is case-blind
    VALID = [
        """
        import torch

        @torch.no_grad()
        def update_ema(ema, model):  # no_grad, but a loop over parameters
            for ema_p, p in zip(ema.parameters(), model.parameters()):
                ema_p.mul_(0.99).add_(p, alpha=0.01)
        """,
        """
        import torch

        def collect(loader):  # a loop over a loader, with gradients on
            return [x for x, _ in loader]
        """,
        """
        import lightning as L
        import torch

        def evaluate(model, loader):  # the file already uses Lightning
            with torch.no_grad():
                for x, y in loader:
                    model(x)
        """,
    ]
    INVALID = [
        """
        import torch
        from torch.utils.data import DataLoader, TensorDataset

        data = DataLoader(TensorDataset(torch.randn(8, 4)))
        with torch.inference_mode():
            for (x,) in data:
                print(x.sum())
        """,
        """
        from torch import no_grad

        @no_grad()
        def test(model, test_loader):
            for batch_idx, (x, y) in enumerate(test_loader):
                model(x)
        """,
    ]

    def check_syntax(self, facts):
        facts = facts.lenient  # decided on ast alone
        if facts.lightning_imports or not may_turn_off_gradients(facts):
            return []
        found = []
        for loop in facts.nodes(ast.For, ast.AsyncFor):
            loader = self.loader_of_syntax(facts, loop.iter)
            if loader is not None and self.without_gradients_syntax(facts, loop):
                found.append(
                    facts.finding(
                        self,
                        loop,
                        f"manual evaluation loop over `{facts.segment(loader)}`: "
                        "Lightning's validation_step / test_step can run it",
                    )
                )
        return found

    def without_gradients_syntax(self, facts, loop) -> bool:
        for ancestor in facts.ancestors(loop):
            if isinstance(ancestor, (ast.With, ast.AsyncWith)) and any(
                isinstance(item.context_expr, ast.Call) and facts.called_name(item.context_expr) & NO_GRAD
                for item in ancestor.items
            ):
                return True
            if isinstance(ancestor, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(
                facts.qualified_names(d.func if isinstance(d, ast.Call) else d) & NO_GRAD
                for d in ancestor.decorator_list
            ):
                return True
        return False

    def loader_of_syntax(self, facts, iterable):
        """The loader a loop iterates over, seen through enumerate() and progress bars."""
        while (
            isinstance(iterable, ast.Call)
            and (iterable.args or iterable.keywords)
            and (facts.called_name(iterable) & ({"builtins.enumerate"} | torch_names.PROGRESS_BARS))
        ):
            first = in_source_order(iterable)[0]
            iterable = first.value if isinstance(first, (ast.keyword, ast.Starred)) else first
        if isinstance(iterable, ast.Call):
            return iterable if facts.called_name(iterable) & torch_names.DATALOADERS else None
        if isinstance(iterable, ast.Name):
            value = facts.values.origin(iterable).value
            if isinstance(value, ast.Call) and facts.called_name(value) & torch_names.DATALOADERS:
                return iterable
            spelled = iterable.id
        elif isinstance(iterable, ast.Attribute):
            spelled = iterable.attr
        else:
            return None
        return iterable if "loader" in spelled.lower() else None

    def check(self, context: Context):
        return self.check_syntax(context.syntax) if context.syntax else []
