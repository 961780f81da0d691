"""LS205 training-step-without-return."""

from __future__ import annotations

import ast

from ..lazy import cst, m
from ..rule import Context, Rule
from ..syntax import Undecided, in_source_order, methods


class TrainingStepWithoutReturn(Rule):
    """
    ## What it does
    Finds a `training_step` that computes a loss (assigns a name with "loss" in it, or logs
    one) but returns nothing, in a LightningModule under automatic optimization.

    ## Why is this bad?
    Under automatic optimization Lightning runs backward and step on what `training_step`
    returns. When it returns `None`, Lightning skips the optimizer step for that batch, without
    an error: the model trains on nothing and the logged loss never goes down.

    ## Example
    ```python
    import lightning as L


    class LitModel(L.LightningModule):
        def training_step(self, batch, batch_idx):
            loss = self(batch).mean()
            self.log("train_loss", loss)
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
    """

    code = "LS205"
    name = "training-step-without-return"
    summary = "A training_step that computes a loss and returns nothing under automatic optimization"
    needs = (
        "lightning",
        "training_step",
        r"(?i:loss)|\\",
    )  # case-blind, and an escape can spell it in a string
    VALID = [
        """
        import lightning as L

        class LitModel(L.LightningModule):
            def training_step(self, batch, batch_idx):
                loss = self(batch).mean()
                if loss.isnan():
                    return None  # skipping a batch on purpose
                return {"loss": loss}
        """,
        """
        import lightning as L

        class LitModel(L.LightningModule):
            def __init__(self):
                super().__init__()
                self.automatic_optimization = False

            def training_step(self, batch, batch_idx):
                loss = self(batch).mean()
                self.manual_backward(loss)
        """,
    ]
    INVALID = [
        """
        from pytorch_lightning import LightningModule

        class LitModel(LightningModule):
            def training_step(self, batch, batch_idx):
                def closure():
                    return 0  # a nested function's return does not count
                self.log("train_loss", self(batch).mean())
        """,
    ]

    def check_syntax(self, facts):
        found = []
        for lightning_class in facts.lightning_classes:
            if not lightning_class.automatic:
                continue
            for method in methods(lightning_class, "training_step"):
                loss = self.computed_loss_syntax(facts, method)
                if loss is not None and not self.returns_value_syntax(facts, method):
                    found.append(
                        facts.finding(
                            self,
                            facts.name_span(method),
                            f"training_step computes {loss} but "
                            "returns nothing: under automatic optimization Lightning then skips "
                            "the optimizer step",
                        )
                    )
        return found

    def own_syntax(self, facts, method) -> list[ast.AST]:
        """The nodes of method's body that belong to method itself, in source order."""
        return [
            n
            for statement in method.body
            for n in facts.walk(statement)
            if facts.enclosing_function(n) is method
        ]

    def returns_value_syntax(self, facts, method) -> bool:
        return any(
            isinstance(r, ast.Return)
            and r.value is not None
            and not (
                isinstance(r.value, ast.Constant)
                and r.value.value is None
                and facts.segment(r.value) == "None"
            )
            for r in self.own_syntax(facts, method)
        )

    def computed_loss_syntax(self, facts, method) -> str | None:
        own = self.own_syntax(facts, method)
        for node in own:
            targets = (
                node.targets
                if isinstance(node, ast.Assign)
                else [node.target]
                if isinstance(node, (ast.AugAssign, ast.AnnAssign))
                else []
            )
            for target in targets:
                if isinstance(target, ast.Name) and "loss" in target.id.lower():
                    return f"`{target.id}`"
        for call in own:
            if not isinstance(call, ast.Call) or not (call.args or call.keywords):
                continue
            first = in_source_order(call)[0]
            value = first.value if isinstance(first, (ast.keyword, ast.Starred)) else first
            if (
                not isinstance(value, ast.Constant)
                or not isinstance(value.value, (str, bytes))
                or not (facts.is_literal(value) if isinstance(value.value, str) else True)
            ):
                continue
            if facts.is_self_call(call, "log"):
                if isinstance(value.value, bytes):
                    raise Undecided
                if "loss" in value.value.lower():
                    return f"a loss ({facts.segment(value)})"
        return None

    def check(self, context: Context):
        for lightning_class in context.lightning.classes:
            if not lightning_class.automatic:
                continue
            for method in lightning_class.methods("training_step"):
                loss = self.computed_loss(context, method)
                if loss is not None and not self.returns_value(context, method):
                    yield self.report(
                        context,
                        method.name,
                        f"training_step computes {loss} but returns nothing: "
                        "under automatic optimization Lightning then skips the optimizer step",
                    )

    def own(self, context: Context, method: cst.FunctionDef, nodes) -> list:
        """The nodes that belong to method itself, not to a function nested in it."""
        return [n for n in nodes if context.index.enclosing_function(n) is method]

    def returns_value(self, context: Context, method: cst.FunctionDef) -> bool:
        returns = self.own(context, method, m.findall(method.body, m.Return()))
        return any(r.value is not None and not m.matches(r.value, m.Name("None")) for r in returns)

    def computed_loss(self, context: Context, method: cst.FunctionDef) -> str | None:
        assigned_name = (
            m.AssignTarget(target=m.Name()) | m.AugAssign(target=m.Name()) | m.AnnAssign(target=m.Name())
        )
        for node in self.own(context, method, m.findall(method.body, assigned_name)):
            if "loss" in node.target.value.lower():
                return f"`{node.target.value}`"
        for call in self.own(
            context, method, m.findall(method.body, m.Call(args=[m.Arg(m.SimpleString()), m.ZeroOrMore()]))
        ):
            if (
                context.lightning.is_self_call(call, "log")
                and "loss" in call.args[0].value.evaluated_value.lower()
            ):
                return f"a loss ({call.args[0].value.value})"
        return None
