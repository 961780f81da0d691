"""`break`, `continue` and `return` that left the batch or epoch loop, in Lightning's terms."""

from __future__ import annotations

import libcst as cst
import libcst.matchers as m

from .core import TODO
from .naming import Rename

EARLY_EXIT = "`{kind}` inside the training code was not converted"


class EarlyExits:
    """Mixed into LoopGenerator."""

    def plan_early_exits(self, statements: list[cst.BaseStatement], block: str) -> list[str]:
        """What each `break`/`continue`/`return` that left the loop becomes, in source order.

        A hook cannot `break` out of the Trainer's loop, but Lightning has an exact equivalent for
        each of these: skipping a batch (training_step returns None), ending the epoch
        (on_train_batch_start returns -1) and stopping training (trainer.should_stop)."""
        body = list(self.loop.batch_loop.body.body)

        def position(statement: cst.CSTNode) -> int:
            """Index in the batch loop body of the statement that holds statement."""
            while statement is not None and statement not in body:
                statement = self.index.parent(statement)
            return body.index(statement) if statement is not None else -1

        backward = position(self.loop.backward)
        step = max((position(s) for s in self.loop.step_statements), default=backward)
        actions = []
        for statement in statements:
            for node in m.findall(statement, m.Break() | m.Continue() | m.Return()):
                if any(
                    isinstance(a, (cst.For, cst.While, cst.FunctionDef))
                    for a in self.index.ancestors(node)
                    if self.index.is_inside(a, {id(statement)})
                ):
                    continue
                kind = type(node).__name__.lower()
                action = "todo"
                if block == "step" and self.loop.manual:
                    # the whole step runs in the user's order: leaving it early is exact anywhere
                    action = {"break": "end_epoch", "continue": "skip_batch"}.get(kind, "todo")
                elif block == "step":
                    position = body.index(statement) if statement in body else position(node)
                    ends_epoch = kind == "break" or (
                        kind == "return" and self.loop.function is not None and node.value is None
                    )
                    if ends_epoch and position > step:
                        action = "end_epoch"
                    elif kind == "continue" and position < backward:
                        action = "skip_batch"
                    elif kind == "continue" and position > step:
                        action = "next_batch"
                elif block == "after_step":  # on_train_batch_end, after Lightning's step
                    action = {"break": "end_epoch_here", "continue": "end_hook"}.get(kind, "todo")
                elif block == "end" and kind == "break":
                    action = "stop_training"
                elif (
                    block == "end"
                    and kind == "return"
                    and node.value is None
                    and not self.leaves_after_fit
                    and self.index.enclosing_function(node) is not self.loop.function
                ):
                    # `return` from the function that runs the epochs: stop, and return after fit
                    action = "stop_training"
                    self.returns_after_fit = True
                if action == "todo":
                    self.todos.append(("LS003", EARLY_EXIT.format(kind=kind), node))
                actions.append(action)
        return actions

    def early_exits(self, statements: list[cst.BaseStatement], actions: list[str]) -> list[cst.BaseStatement]:
        exits = m.SimpleStatementLine(body=[m.Break() | m.Continue() | m.Return()])
        outer, pending = self, list(actions)
        loss = self.index.module.code_for_node(
            self.loss_expression().visit(Rename(self.replacements, self.oracle))
        )
        replacements = {
            "end_epoch": ["self.end_epoch = True  # on_train_batch_start ends the epoch, as `break` did"]
            + (["return"] if self.loop.manual else []),
            "end_epoch_here": [
                "self.end_epoch = True  # on_train_batch_start ends the epoch, as `break` did",
                "return",
            ],
            "end_hook": ["return  # the rest of this batch's code is skipped, as `continue` did"],
            "skip_batch": ["return None  # skips this batch, as `continue` did"],
            "next_batch": [f"return {loss}"],
            "stop_training": ["self.trainer.should_stop = True", "return"],
        }

        class Replace(cst.CSTTransformer):
            depth = 0

            def visit_For(self, node):
                self.depth += 1

            def leave_For(self, original, updated):
                self.depth -= 1
                return updated

            visit_While = visit_For
            leave_While = leave_For

            def visit_FunctionDef(self, node):
                return False

            def leave_SimpleStatementLine(self, original, updated):
                if self.depth or not m.matches(updated, exits):
                    return updated
                action = pending.pop(0)
                if action in replacements:
                    if action in ("end_epoch", "end_epoch_here"):
                        outer.ends_epoch = True
                    lines = [outer.statement(code) for code in replacements[action]]
                    lines[0] = lines[0].with_changes(leading_lines=updated.leading_lines)
                    return cst.FlattenSentinel(lines)
                kind = type(updated.body[0]).__name__.lower()
                reason = EARLY_EXIT.format(kind=kind)
                comment = cst.EmptyLine(
                    comment=cst.Comment(f"{TODO}{reason} (LS003): it no longer ends the loop early")
                )
                return outer.statement("pass").with_changes(leading_lines=[*updated.leading_lines, comment])

        return [s.visit(Replace()) for s in statements]
