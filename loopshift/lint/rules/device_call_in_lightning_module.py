"""LS203 device-call-in-lightning-module."""

from __future__ import annotations

import ast
from collections.abc import Sequence
from typing import cast

from ..lazy import cst, m
from ..rule import Context, Rule
from ..syntax import in_source_order


def names_cuda(expression: cst.BaseExpression | None) -> bool:
    return isinstance(expression, cst.SimpleString) and str(expression.evaluated_value).startswith("cuda")


def device_argument(call: cst.Call, keyword: str) -> cst.BaseExpression | None:
    """The first positional argument, or the one passed as keyword."""
    for arg in call.args:
        if (arg.keyword is None and not arg.star) or (
            arg.keyword is not None and arg.keyword.value == keyword
        ):
            return arg.value
    return None


def names_cuda_syntax(facts, expression: ast.AST | None) -> bool:
    return (
        isinstance(expression, ast.Constant)
        and isinstance(expression.value, str)
        and expression.value.startswith("cuda")
        and facts.is_literal(expression)
    )


def device_argument_syntax(call: ast.Call, keyword: str) -> ast.AST | None:
    for arg in in_source_order(call):
        if isinstance(arg, ast.keyword):
            if arg.arg == keyword:
                return arg.value
        elif not isinstance(arg, ast.Starred):
            return arg
    return None


class DeviceCallInLightningModule(Rule):
    """
    ## What it does
    Finds `.cuda()`, `.to("cuda")` and `torch.device("cuda")` inside a LightningModule.

    ## Why is this bad?
    The Trainer decides where the module runs (`accelerator=`, `devices=`) and moves it and
    every batch there. A hard-coded CUDA device breaks the module on CPU, on Apple silicon and
    on the second GPU of a multi-GPU run, where each process owns a different device.

    ## Example
    ```python
    import lightning as L
    import torch


    class LitModel(L.LightningModule):
        def training_step(self, batch, batch_idx):
            noise = torch.randn(4).cuda()
            return self(batch + noise).mean()
    ```

    ## Use instead
    ```python
    import lightning as L
    import torch


    class LitModel(L.LightningModule):
        def training_step(self, batch, batch_idx):
            noise = torch.randn(4, device=self.device)
            return self(batch + noise).mean()
    ```
    or `register_buffer` for tensors the module keeps.
    """

    code = "LS203"
    name = "device-call-in-lightning-module"
    summary = 'A hard-coded .cuda() / .to("cuda") / torch.device("cuda") inside a LightningModule'
    needs = ("lightning", r"cuda|\\")  # an escape can spell "cuda" in a string
    VALID = [
        """
        import lightning as L
        import torch

        class LitModel(L.LightningModule):
            def training_step(self, batch, batch_idx):
                mask = torch.ones(4).to(self.device)
                return self(batch * mask).mean()
        """,
        """
        import torch

        class Net(torch.nn.Module):  # not a LightningModule
            def forward(self, x):
                return x.cuda()
        """,
    ]
    INVALID = [
        """
        import lightning as L
        import torch

        class LitModel(L.LightningModule):
            def setup(self, stage):
                self.table = torch.zeros(10, device=torch.device("cuda:0"))
                self.other = torch.zeros(10).to(device="cuda")
        """,
    ]

    def check_syntax(self, facts):
        found = []
        for lightning_class in facts.lightning_classes:
            for call in facts.walk(lightning_class.node):
                if not isinstance(call, ast.Call):
                    continue
                if isinstance(call.func, ast.Attribute) and call.func.attr == "cuda":
                    hard_coded = True
                elif isinstance(call.func, ast.Attribute) and call.func.attr == "to":
                    hard_coded = names_cuda_syntax(facts, device_argument_syntax(call, "device"))
                else:
                    hard_coded = "torch.device" in facts.called_name(call) and names_cuda_syntax(
                        facts, device_argument_syntax(call, "type")
                    )
                if hard_coded:
                    found.append(
                        facts.finding(
                            self,
                            call,
                            f"`{facts.segment(call)}` hard-codes CUDA in a "
                            "LightningModule: the Trainer places it; use `self.device`",
                        )
                    )
        return found

    def check(self, context: Context):
        index = context.index
        for lightning_class in context.lightning.classes:
            for call in cast("Sequence[cst.Call]", m.findall(lightning_class.node, m.Call())):
                if m.matches(call.func, m.Attribute(attr=m.Name("cuda"))):
                    hard_coded = True
                elif m.matches(call.func, m.Attribute(attr=m.Name("to"))):
                    hard_coded = names_cuda(device_argument(call, "device"))
                else:
                    hard_coded = "torch.device" in index.called_name(call) and names_cuda(
                        device_argument(call, "type")
                    )
                if hard_coded:
                    yield self.report(
                        context,
                        call,
                        f"`{context.module.code_for_node(call)}` hard-codes CUDA in a "
                        "LightningModule: the Trainer places it; use `self.device`",
                    )
