"""LS201 backward-in-training-step."""

from __future__ import annotations

import ast
from collections.abc import Sequence
from typing import cast

from ..lazy import cst, m
from ..lightning import MANUAL, OWN
from ..rule import Context, Rule
from ..syntax import methods

AUTOGRAD_BACKWARD = {"torch.autograd.backward"}


class BackwardInTrainingStep(Rule):
    """
    ## What it does
    Finds `.backward()`, `optimizer.step()` and `.zero_grad()` calls inside `training_step`
    of a LightningModule that uses automatic optimization (it does not set
    `self.automatic_optimization = False`).

    ## Why is this bad?
    Under automatic optimization Lightning calls backward, step and zero_grad itself on the
    loss `training_step` returns. Doing it again inside the step runs backward twice, steps the
    optimizer twice per batch, or clears gradients Lightning is accumulating; precision
    plugins, gradient clipping and accumulation no longer see the real step.

    ## Example
    ```python
    import lightning as L


    class LitModel(L.LightningModule):
        def training_step(self, batch, batch_idx):
            loss = self(batch).mean()
            loss.backward()
            return loss
    ```

    ## Use instead
    ```python
    import lightning as L


    class LitModel(L.LightningModule):
        def training_step(self, batch, batch_idx):
            return self(batch).mean()
    ```
    or turn automatic optimization off and use `self.manual_backward(loss)` (see LS202).
    """

    code = "LS201"
    name = "backward-in-training-step"
    summary = "backward(), optimizer.step() or zero_grad() inside training_step under automatic optimization"
    needs = ("lightning", "training_step", "backward|step|zero_grad")
    VALID = [
        """
        import lightning as L

        class LitModel(L.LightningModule):
            def __init__(self):
                super().__init__()
                self.automatic_optimization = False

            def training_step(self, batch, batch_idx):
                opt = self.optimizers()
                opt.zero_grad()
                self.manual_backward(self(batch).mean())
                opt.step()
        """,
        """
        import lightning as L

        class LitModel(L.LightningModule):
            def training_step(self, batch, batch_idx):
                self.lr_schedulers().step()  # a scheduler, not an optimizer
                return self(batch).mean()
        """,
    ]
    INVALID = [
        """
        import pytorch_lightning as pl
        import torch

        class LitModel(pl.LightningModule):
            def configure_optimizers(self):
                self.optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
                return self.optimizer

            def training_step(self, batch, batch_idx):
                self.optimizer.zero_grad()
                loss = self(batch).mean()
                self.optimizer.step()
                return loss
        """,
        """
        import torch
        from lightning.pytorch import LightningModule

        class Base(LightningModule):
            pass

        class LitModel(Base):
            def training_step(self, batch, batch_idx):
                loss = self(batch).mean()
                torch.autograd.backward(loss)
                return loss
        """,
    ]

    def check_syntax(self, facts):
        found = []
        for lightning_class in facts.lightning_classes:
            if not lightning_class.automatic:
                continue
            for method in methods(lightning_class, "training_step"):
                for call in facts.walk(method):
                    if isinstance(call, ast.Call) and (
                        facts.called_name(call) & AUTOGRAD_BACKWARD
                        or self.steps_syntax(facts, call, lightning_class)
                    ):
                        found.append(
                            facts.finding(
                                self,
                                call,
                                f"`{facts.segment(call.func)}()` in training_step under "
                                "automatic optimization: Lightning already runs backward, step and zero_grad",
                            )
                        )
        return found

    def steps_syntax(self, facts, call: ast.Call, lightning_class) -> bool:
        if not (isinstance(call.func, ast.Attribute) and call.func.attr in ("backward", "step", "zero_grad")):
            return False
        kind = facts.optimizer_kind(call.func.value, lightning_class)
        if kind == MANUAL:
            return False
        method = call.func.attr
        return method == "backward" or kind == OWN or method == "zero_grad"

    def check(self, context: Context):
        lightning = context.lightning
        for lightning_class in lightning.classes:
            if not lightning_class.automatic:
                continue
            for method in lightning_class.methods("training_step"):
                for call in cast("Sequence[cst.Call]", m.findall(method, m.Call())):
                    if context.index.called_name(call) & AUTOGRAD_BACKWARD or self.steps(
                        lightning, call, lightning_class
                    ):
                        yield self.report(
                            context,
                            call,
                            f"`{context.module.code_for_node(call.func)}()` in training_step "
                            "under automatic optimization: Lightning already runs backward, step and "
                            "zero_grad",
                        )

    def steps(self, lightning, call: cst.Call, lightning_class) -> bool:
        if not m.matches(
            call.func, m.Attribute(attr=m.Name("backward") | m.Name("step") | m.Name("zero_grad"))
        ):
            return False
        func = cast("cst.Attribute", call.func)  # (as matched)
        kind = lightning.optimizer_kind(func.value, lightning_class)
        if kind == MANUAL:  # stepping self.optimizers() means manual optimization: LS202
            return False
        method = func.attr.value
        return method == "backward" or kind == OWN or method == "zero_grad"
