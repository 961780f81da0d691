"""Progress reports of the training loss: `print`s in the batch loop that show the loss (every N
batches, often as a running average), with the accumulators that only feed them:

    running_loss += loss.item()
    if i % 100 == 99:
        print(f"[{epoch + 1}, {i + 1}] loss: {running_loss / 100:.3f}")
        running_loss = 0.0

The Trainer shows the logged loss in its progress bar (`self.log(..., prog_bar=True)`), so these
go. A print that shows anything else the step computed (outputs, accuracies) is the user's own.
"""
from __future__ import annotations

import libcst as cst
import libcst.matchers as m

from .training import TrainingLoop

PRINT = m.SimpleStatementLine(body=[m.Expr(value=m.Call(func=m.Name("print")))])
EVERY_N = m.Comparison(left=m.BinaryOperation(operator=m.Modulo())) \
    | m.UnaryOperation(operator=m.Not(), expression=m.BinaryOperation(operator=m.Modulo()))
RESET = m.SimpleStatementLine(body=[m.Assign(targets=[m.AssignTarget(target=m.Name())],
                                             value=m.Integer("0") | m.Float("0.0") | m.Float("0."))])
PURE_BUILTINS = {"print", "len", "float", "int", "round", "str", "abs", "min", "max"}


class ReportingAnalysis:
    """Mixed into Analyzer."""

    def find_loss_reports(self, loop: TrainingLoop) -> None:
        body = list(loop.batch_loop.body.body)
        for statement in body:
            if m.matches(statement, PRINT):
                report, resets = [statement], []
            elif m.matches(statement, m.If(test=EVERY_N, orelse=None)) and all(
                    m.matches(s, PRINT | RESET) for s in statement.body.body):
                report = [s for s in statement.body.body if m.matches(s, PRINT)]
                resets = [s for s in statement.body.body if m.matches(s, RESET)]
            else:
                continue
            feeding = self.accumulators(loop, statement, resets)
            if report and feeding is not None and all(self.shows_only_the_loss(loop, p, feeding) for p in report):
                loop.loss_reports += [statement, *(increment for increment, _ in feeding.values())]
                loop.report_inits += [init for _, init in feeding.values()]

    def accumulators(self, loop: TrainingLoop, block: cst.BaseStatement, resets) -> dict | None:
        """name -> (`total += ...` in the step, `total = 0.0` before it) for each running value the
        report resets; None when one is used anywhere else."""
        found = {}
        for reset in resets:
            name = reset.body[0].targets[0].target
            increments = [s for s in loop.batch_loop.body.body if m.matches(s, m.SimpleStatementLine(
                body=[m.AugAssign(target=m.Name(name.value), operator=m.AddAssign())]))]
            bindings = [a for a in self.index.assignments(name) if a.scope is self.index.scope(block)]
            inits = [a for a in bindings if not self.index.is_inside(a.node, {id(loop.batch_loop)})]
            if len(increments) != 1 or len(inits) != 1 or not m.matches(self.index.statement_of(inits[0].node), RESET):
                return None
            pattern = {id(block), id(increments[0]), id(self.index.statement_of(inits[0].node))}
            uses = [access.node for a in bindings for access in a.references] + [a.node for a in bindings]
            if not all(self.index.is_inside(node, pattern) for node in uses):
                return None
            found[name.value] = (increments[0], self.index.statement_of(inits[0].node))
        return found

    def shows_only_the_loss(self, loop: TrainingLoop, report: cst.SimpleStatementLine, accumulators: dict) -> bool:
        """Whether a print shows nothing the step computed but the loss (and running sums of it):
        counters, the epoch and values fixed before the step are fine."""
        losses = {b.body[0].value.func.value.value for b in [loop.backward, *loop.backwards]
                  if b is not None and isinstance(b.body[0].value.func.value, cst.Name)}
        if not losses:
            return False
        call = report.body[0].value
        for called in m.findall(call, m.Call(func=m.Name())):
            if called.func.value not in PURE_BUILTINS:
                return False
        batch = {id(loop.batch_loop.body)}
        for name in m.findall(call, m.Name()):
            parent = self.index.parent(name)
            if isinstance(parent, cst.Attribute) and parent.attr is name or isinstance(parent, cst.Call) and parent.func is name:
                continue
            if name.value in accumulators or name.value == loop.index_name or self.batch_size_of(name, loop):
                continue
            if name.value in losses:
                if not m.matches(parent, m.Attribute(attr=m.Name("item"))):
                    return False
                continue
            bindings = self.index.assignments(name)
            if any(self.index.is_inside(a.node, batch) for a in bindings):
                return False  # something else the step computed
        if any(name.value in accumulators for name in m.findall(call, m.Name())):
            increments = [increment for increment, _ in accumulators.values()]
            if not all(self.sums_the_loss(increment, losses) for increment in increments):
                return False
        return True

    def batch_size_of(self, name: cst.Name, loop: TrainingLoop) -> bool:
        """`len(data)`, `data.size(0)`, `data.shape[0]` of the batch: how many samples, not what they hold."""
        if name.value not in {n.value for n in m.findall(loop.batch_target, m.Name())}:
            return False
        parent = self.index.parent(name)
        if isinstance(parent, cst.Arg):
            call = self.index.parent(parent)
            return m.matches(call, m.Call(func=m.Name("len"), args=[m.Arg()]))
        return m.matches(parent, m.Attribute(value=m.Name(name.value), attr=m.Name("size") | m.Name("shape")))

    @staticmethod
    def sums_the_loss(increment: cst.SimpleStatementLine, losses: set[str]) -> bool:
        """`total += loss.item()` (times a batch size too): a running sum of the loss."""
        value = increment.body[0].value
        return bool(m.findall(value, m.Call(func=m.Attribute(value=m.Name(m.MatchIfTrue(lambda n: n in losses)),
                                                             attr=m.Name("item")))))
