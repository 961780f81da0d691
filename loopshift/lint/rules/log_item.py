"""LS204 log-item."""

from __future__ import annotations

import ast
from collections.abc import Sequence
from typing import cast

from ..lazy import cst, m
from ..rule import Context, Fix, Rule, attribute
from ..syntax import in_source_order


def logged_values(call: cst.Call) -> list[cst.BaseExpression]:
    """The values of `self.log(name, value)` and of the dict in `self.log_dict({...})`."""
    method = cast("cst.Attribute", call.func).attr.value  # (a self.log or self.log_dict call)
    position, keyword = (1, "value") if method == "log" else (0, "dictionary")
    positional = [a.value for a in call.args if a.keyword is None and not a.star]
    named = [a.value for a in call.args if a.keyword is not None and a.keyword.value == keyword]
    values = named or positional[position : position + 1]
    if method == "log_dict":
        values = [
            e.value
            for v in values
            if isinstance(v, cst.Dict)
            for e in v.elements
            if isinstance(e, cst.DictElement)
        ]
    return values


def logged_values_syntax(call: ast.Call) -> list[ast.expr]:
    """logged_values() on ast."""
    method = cast(ast.Attribute, call.func).attr
    position, keyword = (1, "value") if method == "log" else (0, "dictionary")
    arguments = in_source_order(call)
    positional = [a for a in arguments if not isinstance(a, (ast.keyword, ast.Starred))]
    named: list[ast.expr] = [a.value for a in arguments if isinstance(a, ast.keyword) and a.arg == keyword]
    values = named or positional[position : position + 1]
    if method == "log_dict":
        values = [
            v for d in values if isinstance(d, ast.Dict) for k, v in zip(d.keys, d.values) if k is not None
        ]
    return values


class LogItem(Rule):
    """
    ## What it does
    Finds `self.log(name, x.item())` and `.item()` values in `self.log_dict({...})` inside a
    LightningModule.

    ## Why is this bad?
    `.item()` copies the value to the CPU and waits for the GPU to finish, on every batch.
    `self.log` takes tensors: it reduces them across processes (`sync_dist=True`) and
    accumulates the epoch mean on the device, and syncs only when it has to.

    ## Example
    ```python
    import lightning as L


    class LitModel(L.LightningModule):
        def training_step(self, batch, batch_idx):
            loss = self(batch).mean()
            self.log("train_loss", loss.item())
            return loss
    ```

    ## Use instead
    ```python
    import lightning as L


    class LitModel(L.LightningModule):
        def training_step(self, batch, batch_idx):
            loss = self(batch).mean()
            self.log("train_loss", loss)
            return loss
    ```

    ## Fix
    `--fix` drops the `.item()`.
    """

    code = "LS204"
    name = "log-item"
    summary = "self.log(name, x.item()): log the tensor"
    fixable = True
    needs = ("lightning", attribute("item"))
    VALID = [
        """
        import lightning as L

        class LitModel(L.LightningModule):
            def training_step(self, batch, batch_idx):
                loss = self(batch).mean()
                print(loss.item())  # not logged
                self.log("train_loss", loss, prog_bar=True)
                return loss
        """,
    ]
    INVALID = [
        """
        import lightning as L

        class LitModel(L.LightningModule):
            def validation_step(self, batch, batch_idx):
                self.log(name="val_loss", value=self(batch).mean().item())
        """,
    ]
    FIXED = [
        (
            """
        import lightning as L

        class LitModel(L.LightningModule):
            def validation_step(self, batch, batch_idx):
                loss, acc = self.evaluate(batch)
                self.log_dict({"val_loss": loss.item(), "val_acc": acc.item()}, prog_bar=True)
        """,
            """
        import lightning as L

        class LitModel(L.LightningModule):
            def validation_step(self, batch, batch_idx):
                loss, acc = self.evaluate(batch)
                self.log_dict({"val_loss": loss, "val_acc": acc}, prog_bar=True)
        """,
        )
    ]

    def check_syntax(self, facts):
        found = []
        for lightning_class in facts.lightning_classes:
            for call in facts.walk(lightning_class.node):
                if not facts.is_self_call(call, "log", "log_dict"):
                    continue
                for value in logged_values_syntax(call):
                    if (
                        isinstance(value, ast.Call)
                        and isinstance(value.func, ast.Attribute)
                        and value.func.attr == "item"
                        and not value.args
                        and not value.keywords
                    ):
                        found.append(
                            facts.finding(
                                self,
                                value,
                                "`.item()` in `self.log`: log the tensor, Lightning reduces and syncs it",
                                fixable=True,
                            )
                        )
        return found

    def check(self, context: Context):
        lightning = context.lightning
        item = m.Call(func=m.Attribute(attr=m.Name("item")), args=[])
        for lightning_class in lightning.classes:
            for call in cast("Sequence[cst.Call]", m.findall(lightning_class.node, m.Call())):
                if not lightning.is_self_call(call, "log", "log_dict"):
                    continue
                for value in logged_values(call):
                    if m.matches(value, item):
                        yield self.report(
                            context,
                            value,
                            "`.item()` in `self.log`: log the tensor, Lightning reduces and syncs it",
                            Fix({value: cast("cst.Attribute", cast("cst.Call", value).func).value}),
                        )
