"""How epochs drive the batch loop: an epoch loop around it or around the call of the function
that holds it, and the per-epoch code before and after it."""

from __future__ import annotations

import libcst as cst
import libcst.matchers as m

from . import torch_names
from .analysis_part import AnalysisPart
from .index import CodeIndex
from .resolution import Resolver
from .stepping import SteppingAnalysis
from .training import EpochSegments, TrainingCode, TrainingLoop
from .util import held_object, method_call


class EpochAnalysis(AnalysisPart):
    """A part of the analysis: the epoch loop that drives the batch loop, and the per-epoch code around it."""

    def __init__(
        self, index: CodeIndex, resolver: Resolver, code: TrainingCode, stepping: SteppingAnalysis
    ) -> None:
        super().__init__(index, resolver, code)
        self.stepping = stepping

    # -- epochs ------------------------------------------------------------------------------
    def find_epochs(self, loop: TrainingLoop) -> bool:
        owner = self.index.owner_of_block(loop.statement)
        driver: cst.BaseStatement = loop.statement
        if isinstance(owner, cst.FunctionDef) and self.runs_in_place(owner, loop):
            loop.host = driver  # one pass, fit right where the loop was
            return True
        if isinstance(owner, cst.FunctionDef):
            holder = self.resolver.method_class(owner)
            if holder is not None and holder.name.value in self.code.models:
                self.code.problem(
                    "LS001",
                    f"the update runs in {holder.name.value}.{owner.name.value}(), a method of the model "
                    "itself; training loops in methods of a model are not converted yet",
                    owner,
                )
                return False
            calls = self.resolver.calls_of(owner)
            statement_call = m.Expr() | m.Assign(targets=[m.AssignTarget(target=m.Name())])
            if len(calls) != 1 or not m.matches(self.index.parent(calls[0]), statement_call):
                self.code.problem(
                    "LS001",
                    f"{owner.name.value}() must be called exactly once, as a statement, to be converted",
                    owner,
                )
                return False
            if self.index.enclosing_function(owner) is not None:
                self.code.problem("LS001", "training loops in nested functions are not converted yet", owner)
                return False
            loop.function, loop.call = owner, calls[0]
            self.split_function(loop, owner)
            driver = self.index.statement_of(calls[0])
            owner = self.index.owner_of_block(driver)
        loop.host = driver
        if isinstance(owner, cst.For) and not self.epoch_loop(loop, owner, driver):
            return False
        if not isinstance(owner, (cst.For, cst.Module, cst.FunctionDef, cst.If, cst.Else, cst.With, cst.Try)):
            self.code.problem("LS001", "the training loop sits inside a block that is not converted", driver)
            return False
        around = self.loop_around(loop.host)
        if around is not None and not all(
            self.index.is_inside(o.statement, {id(around)}) for o in loop.all_optimizers
        ):
            line = self.index.span(around).line
            self.code.problem(
                "LS001",
                f"the loop at line {line} is not taken as the epoch loop (the batch loop sits in a block "
                "of its own inside it): one fit per iteration would build the optimizer anew each time, "
                "where the loop kept one",
                loop.host,
            )
            return False
        per_epoch = {id(s) for s in loop.segments.before + loop.segments.after}
        if any(self.index.is_inside(o.statement, per_epoch) for o in loop.all_optimizers):
            self.code.problem(
                "LS006",
                "the optimizer is built anew every epoch; Lightning builds it once, in configure_optimizers",
                loop.host,
            )
            return False
        return True

    def loop_around(self, host: cst.CSTNode) -> cst.For | cst.While | None:
        """The innermost for/while loop of the host's own function (or module) that holds it."""
        for ancestor in self.index.ancestors(host):
            if isinstance(ancestor, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
                return None
            if isinstance(ancestor, (cst.For, cst.While)):
                return ancestor
        return None

    def runs_in_place(self, function: cst.FunctionDef, loop: TrainingLoop) -> bool:
        """A single-pass loop in a function that nothing calls per epoch: `main()` under
        `if __name__ == "__main__":`, an entry point without parameters that nothing here calls
        (a `train(model, loader, ...)` called from elsewhere may well be called once per epoch), or
        a function that builds its own optimizer (a whole training run) and is not called in a loop."""
        calls = self.resolver.calls_of(function)
        callers = [self.index.owner_of_block(self.index.statement_of(call)) for call in calls]
        if any(self.index.is_inside(o.statement, {id(function)}) for o in loop.all_optimizers):
            return not any(isinstance(caller, (cst.For, cst.While)) for caller in callers)
        if not calls:
            return (
                not function.params.params
                and self.resolver.method_class(function) is None
                and self.index.enclosing_function(function) is None
            )
        return len(calls) == 1 and not isinstance(
            callers[0], (cst.For, cst.While, cst.Module, cst.FunctionDef)
        )

    def split_function(self, loop: TrainingLoop, function: cst.FunctionDef) -> None:
        body = list(function.body.body)
        position = body.index(loop.statement)
        before, after = body[:position], body[position + 1 :]
        if before and m.matches(before[0], m.SimpleStatementLine(body=[m.Expr(value=m.SimpleString())])):
            before = before[1:]  # the docstring
        if after and m.matches(after[-1], m.SimpleStatementLine(body=[m.Return()])):
            returned = after.pop().body[0]
            assign = self.index.parent(loop.call) if loop.call is not None else None
            if isinstance(assign, cst.Assign) and returned.value is not None:
                # `avg = train(...)` with `return total / n`: the epoch-end code computes `avg = total / n`
                after.append(cst.SimpleStatementLine([cst.Assign(assign.targets, returned.value)]))
        loop.segments.before.extend(before)
        loop.segments.after.extend(after)

    def epoch_loop(self, loop: TrainingLoop, epoch_loop: cst.For, driver: cst.BaseStatement) -> bool:
        iterable = epoch_loop.iter
        while isinstance(iterable, cst.Call) and self.index.called_name(iterable) & torch_names.PROGRESS_BARS:
            iterable = iterable.args[0].value
        if not (
            isinstance(iterable, cst.Call)
            and "builtins.range" in self.index.called_name(iterable)
            and isinstance(epoch_loop.target, cst.Name)
            and 1 <= len(iterable.args) <= 2
            and all(a.keyword is None for a in iterable.args)
        ):
            self.code.problem(
                "LS006", "the epoch loop is not a `for epoch in range(...)` loop; not converted", epoch_loop
            )
            return False
        if epoch_loop.orelse is not None:
            self.code.problem("LS006", "the epoch loop has an else block; not converted", epoch_loop)
            return False
        args = [a.value for a in iterable.args]
        start, stop = (args[0], args[1]) if len(args) == 2 else (None, args[0])
        loop.epoch_loop, loop.host = epoch_loop, epoch_loop
        loop.epoch_name, loop.epoch_start = epoch_loop.target.value, start
        loop.epochs = epoch_count(start, stop)
        body = list(epoch_loop.body.body)
        position = body.index(driver)
        loop.segments = EpochSegments(
            body[:position] + loop.segments.before, loop.segments.after + body[position + 1 :]
        )
        return True

    def classify_segments(self, loop: TrainingLoop) -> None:
        """Takes scheduler steps and zero_grad() out of the per-epoch code (under manual
        optimization they stay, in the user's order)."""
        if loop.manual:
            return
        for segment in (loop.segments.before, loop.segments.after):
            for statement in list(segment):
                call = method_call(statement, "step")
                root = held_object(call.func.value) if call is not None else None
                scheduler = (
                    self.resolver.definition_of(root, self.code.schedulers) if root is not None else None
                )
                if scheduler is not None and not call.args and not scheduler.is_plateau:
                    loop.schedulers.append((scheduler, "epoch"))
                    loop.scheduler_steps.append(statement)
                    segment.remove(statement)
                elif (
                    loop.optimizer is not None
                    and (zero_grad := method_call(statement, "zero_grad"))
                    and self.stepping.clears(zero_grad, loop.optimizer)
                ):
                    loop.owned_statements.append(statement)  # the Trainer zeroes the gradients
                    segment.remove(statement)


def epoch_count(start: cst.BaseExpression | None, stop: cst.BaseExpression) -> cst.BaseExpression:
    """max_epochs for range(start, stop): `E` for range(E), range(0, E) and range(1, E + 1)."""
    if start is None or m.matches(start, m.Integer("0")):
        return stop
    if (
        m.matches(stop, m.BinaryOperation(operator=m.Add(), right=m.Integer()))
        and m.matches(start, m.Integer())
        and stop.right.value == start.value
    ):
        return stop.left
    return cst.BinaryOperation(left=stop, operator=cst.Subtract(), right=start)
