"""LS202 manual-optimization-without-flag."""

from __future__ import annotations

import ast
from collections.abc import Sequence
from typing import cast

from ..lazy import cst, m
from ..lightning import MANUAL, LightningClass
from ..rule import Context, Fix, Rule
from ..syntax import Undecided, alone_on_line, methods


class ManualOptimizationWithoutFlag(Rule):
    """
    ## What it does
    Finds `self.manual_backward(...)`, and `step()` / `zero_grad()` on the optimizers from
    `self.optimizers()`, in a LightningModule that does not set
    `self.automatic_optimization = False`.

    ## Why is this bad?
    These are the tools of manual optimization. With automatic optimization still on,
    Lightning also runs its own backward and step on the loss `training_step` returns (or
    silently skips the step when it returns nothing), so the model is updated twice or in a way
    neither you nor Lightning intended.

    ## Example
    ```python
    import lightning as L


    class GAN(L.LightningModule):
        def training_step(self, batch, batch_idx):
            opt_g, opt_d = self.optimizers()
            self.manual_backward(self(batch).mean())
            opt_g.step()
    ```

    ## Use instead
    ```python
    import lightning as L


    class GAN(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.automatic_optimization = False

        def training_step(self, batch, batch_idx):
            opt_g, opt_d = self.optimizers()
            self.manual_backward(self(batch).mean())
            opt_g.step()
    ```

    ## Fix
    Where `__init__` calls `super().__init__()`, `--fix` adds
    `self.automatic_optimization = False` right after it.
    """

    code = "LS202"
    name = "manual-optimization-without-flag"
    summary = "manual_backward() or self.optimizers() stepping without automatic_optimization = False"
    fixable = True
    needs = ("lightning", "manual_backward|optimizers")
    VALID = [
        """
        import lightning as L

        class LitModel(L.LightningModule):
            @property
            def automatic_optimization(self):
                return False

            def training_step(self, batch, batch_idx):
                self.manual_backward(self(batch).mean())
                self.optimizers().step()
        """,
        """
        import lightning as L

        class LitModel(L.LightningModule):
            def on_train_epoch_end(self):
                print(self.optimizers().param_groups[0]["lr"])  # reading, not stepping
        """,
    ]
    INVALID = [
        """
        import lightning as L

        class LitModel(L.LightningModule):
            def training_step(self, batch, batch_idx):
                for opt in self.optimizers():
                    opt.zero_grad()
        """,
    ]
    FIXED = [
        (
            """
        import lightning as L

        class LitModel(L.LightningModule):
            def __init__(self, lr):
                super().__init__()
                self.lr = lr

            def training_step(self, batch, batch_idx):
                self.manual_backward(self(batch).mean())
        """,
            """
        import lightning as L

        class LitModel(L.LightningModule):
            def __init__(self, lr):
                super().__init__()
                self.automatic_optimization = False
                self.lr = lr

            def training_step(self, batch, batch_idx):
                self.manual_backward(self(batch).mean())
        """,
        )
    ]

    def check_syntax(self, facts):
        found = []
        for lightning_class in facts.lightning_classes:
            if not lightning_class.automatic:
                continue
            fixable = self.may_turn_off_automatic(facts, lightning_class)
            for call in facts.walk(lightning_class.node):
                if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)):
                    continue
                manual_step = (
                    call.func.attr in ("step", "zero_grad")
                    and facts.optimizer_kind(call.func.value, lightning_class) == MANUAL
                )
                if manual_step or facts.is_self_call(call, "manual_backward"):
                    found.append(
                        facts.finding(
                            self,
                            call,
                            f"`{facts.segment(call.func)}()` is manual optimization, but "
                            "the module does not set `self.automatic_optimization = False`",
                            fixable,
                        )
                    )
        return found

    def may_turn_off_automatic(self, facts, lightning_class) -> bool:
        """Whether turn_off_automatic finds an `__init__` with `super().__init__()` to add the flag after."""
        for init in methods(lightning_class, "__init__"):
            supers = [
                s
                for s in init.body
                if isinstance(s, ast.Expr)
                and isinstance(s.value, ast.Call)
                and isinstance(s.value.func, ast.Attribute)
                and s.value.func.attr == "__init__"
                and isinstance(s.value.func.value, ast.Call)
                and isinstance(s.value.func.value.func, ast.Name)
                and s.value.func.value.func.id == "super"
            ]
            if any(alone_on_line(facts, s) for s in supers):
                if init.args.posonlyargs:
                    raise Undecided  # libcst's `params` leave them out
                if init.args.args:
                    return True
        return False

    def check(self, context: Context):
        lightning = context.lightning
        for lightning_class in lightning.classes:
            if not lightning_class.automatic:
                continue
            fix = self.turn_off_automatic(lightning_class)
            for call in cast(
                "Sequence[cst.Call]", m.findall(lightning_class.node, m.Call(func=m.Attribute()))
            ):
                func = cast("cst.Attribute", call.func)  # (as matched)
                manual_step = (
                    func.attr.value in ("step", "zero_grad")
                    and lightning.optimizer_kind(func.value, lightning_class) == MANUAL
                )
                if manual_step or lightning.is_self_call(call, "manual_backward"):
                    yield self.report(
                        context,
                        call,
                        f"`{context.module.code_for_node(call.func)}()` is manual "
                        "optimization, but the module does not set `self.automatic_optimization = False`",
                        fix,
                    )

    def turn_off_automatic(self, lightning_class: LightningClass) -> Fix | None:
        """Adds the flag after `super().__init__()` in `__init__`, where there is one."""
        super_init = m.SimpleStatementLine(
            body=[
                m.Expr(
                    value=m.Call(
                        func=m.Attribute(value=m.Call(func=m.Name("super")), attr=m.Name("__init__"))
                    )
                )
            ]
        )
        for init in lightning_class.methods("__init__"):
            body = list(init.body.body)
            supers = [position for position, statement in enumerate(body) if m.matches(statement, super_init)]
            if supers and init.params.params:
                this = init.params.params[0].name.value
                body.insert(supers[0] + 1, cst.parse_statement(f"{this}.automatic_optimization = False\n"))
                return Fix({init.body: init.body.with_changes(body=body)})
        return None
