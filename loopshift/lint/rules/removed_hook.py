"""LS207 removed-hook."""

from __future__ import annotations

from ..rule import Context, Rule
from ..syntax import Undecided, methods

REMOVED_HOOKS = {
    "training_epoch_end": "on_train_epoch_end",
    "validation_epoch_end": "on_validation_epoch_end",
    "test_epoch_end": "on_test_epoch_end",
}


class RemovedHook(Rule):
    """
    ## What it does
    Finds LightningModule hooks that Lightning 2.0 removed: `training_epoch_end`,
    `validation_epoch_end` and `test_epoch_end`, and the `optimizer_idx` parameter of
    `training_step`.

    ## Why is this bad?
    Lightning 2.x never calls the removed hooks, so the code in them silently stops running
    (the epoch metric is never logged, the scheduler never steps), and it refuses a
    `training_step` that takes `optimizer_idx`: several optimizers now need manual
    optimization.

    ## Example
    ```python
    import lightning as L


    class LitModel(L.LightningModule):
        def validation_step(self, batch, batch_idx):
            return self(batch).mean()

        def validation_epoch_end(self, outputs):
            self.log("val_loss", sum(outputs) / len(outputs))
    ```

    ## Use instead
    ```python
    import lightning as L


    class LitModel(L.LightningModule):
        def on_validation_epoch_start(self):
            self.outputs = []

        def validation_step(self, batch, batch_idx):
            self.outputs.append(self(batch).mean())

        def on_validation_epoch_end(self):
            self.log("val_loss", sum(self.outputs) / len(self.outputs))
    ```
    """

    code = "LS207"
    name = "removed-hook"
    summary = "A LightningModule hook removed in Lightning 2.0 (training_epoch_end, optimizer_idx, ...)"
    needs = ("lightning", "_epoch_end|optimizer_idx")
    VALID = [
        """
        import lightning as L

        class LitModel(L.LightningModule):
            def on_train_epoch_end(self):
                pass
        """,
        """
        class Report:  # not a LightningModule
            def validation_epoch_end(self, outputs):
                pass
        """,
    ]
    INVALID = [
        """
        import pytorch_lightning as pl

        class GAN(pl.LightningModule):
            def training_step(self, batch, batch_idx, optimizer_idx):
                return self(batch).mean()

            def training_epoch_end(self, outputs):
                pass
        """,
    ]

    def check_syntax(self, facts):
        found = []
        for lightning_class in facts.lightning_classes:
            for hook, replacement in REMOVED_HOOKS.items():
                for method in methods(lightning_class, hook):
                    found.append(
                        facts.finding(
                            self,
                            facts.name_span(method),
                            f"`{hook}` was removed in Lightning 2.0 and is never called: use `{replacement}`",
                        )
                    )
            for method in methods(lightning_class, "training_step"):
                arguments = method.args
                for param in [*arguments.args, *arguments.kwonlyargs]:
                    if param.arg == "optimizer_idx":
                        if arguments.defaults or any(d is not None for d in arguments.kw_defaults):
                            raise Undecided  # libcst's span of a parameter runs to its default
                        found.append(
                            facts.finding(
                                self,
                                param,
                                "`optimizer_idx` was removed from training_step in "
                                "Lightning 2.0: several optimizers need manual optimization",
                            )
                        )
        return found

    def check(self, context: Context):
        for lightning_class in context.lightning.classes:
            for hook, replacement in REMOVED_HOOKS.items():
                for method in lightning_class.methods(hook):
                    yield self.report(
                        context,
                        method.name,
                        f"`{hook}` was removed in Lightning 2.0 and is never called: use `{replacement}`",
                    )
            for method in lightning_class.methods("training_step"):
                for param in [*method.params.params, *method.params.kwonly_params]:
                    if param.name.value == "optimizer_idx":
                        yield self.report(
                            context,
                            param,
                            "`optimizer_idx` was removed from training_step in "
                            "Lightning 2.0: several optimizers need manual optimization",
                        )
