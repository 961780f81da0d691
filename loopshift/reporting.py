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

from . import torch_names
from .analysis_part import AnalysisPart
from .training import ScalarWriter, TrainingLoop

PRINT = m.SimpleStatementLine(body=[m.Expr(value=m.Call(func=m.Name("print")))])
EVERY_N = m.Comparison(left=m.BinaryOperation(operator=m.Modulo())) | m.UnaryOperation(
    operator=m.Not(), expression=m.BinaryOperation(operator=m.Modulo())
)
RESET = m.SimpleStatementLine(
    body=[
        m.Assign(
            targets=[m.AssignTarget(target=m.Name())], value=m.Integer("0") | m.Float("0.0") | m.Float("0.")
        )
    ]
)
PURE_BUILTINS = {"print", "len", "float", "int", "round", "str", "abs", "min", "max"}


class ReportingAnalysis(AnalysisPart):
    """A part of the analysis: printed running losses that the progress bar shows instead."""

    def find_loss_reports(self, loop: TrainingLoop) -> None:
        body = list(loop.batch_loop.body.body)
        for statement in body:
            if m.matches(statement, PRINT):
                report, resets = [statement], []
            elif m.matches(statement, m.If(test=EVERY_N, orelse=None)) and all(
                m.matches(s, PRINT | RESET) for s in statement.body.body
            ):
                report = [s for s in statement.body.body if m.matches(s, PRINT)]
                resets = [s for s in statement.body.body if m.matches(s, RESET)]
            else:
                continue
            feeding = self.accumulators(loop, statement, resets)
            if (
                report
                and feeding is not None
                and all(self.shows_only_the_loss(loop, p, feeding) for p in report)
            ):
                loop.loss_reports += [statement, *(increment for increment, _ in feeding.values())]
                loop.report_inits += [init for _, init in feeding.values()]

    def accumulators(self, loop: TrainingLoop, block: cst.BaseStatement, resets) -> dict | None:
        """name -> (`total += ...` in the step, `total = 0.0` before it) for each running value the
        report resets; None when one is used anywhere else."""
        found = {}
        for reset in resets:
            name = reset.body[0].targets[0].target
            increments = [
                s
                for s in loop.batch_loop.body.body
                if m.matches(
                    s,
                    m.SimpleStatementLine(
                        body=[m.AugAssign(target=m.Name(name.value), operator=m.AddAssign())]
                    ),
                )
            ]
            bindings = [a for a in self.index.assignments(name) if a.scope is self.index.scope(block)]
            inits = [a for a in bindings if not self.index.is_inside(a.node, {id(loop.batch_loop)})]
            if (
                len(increments) != 1
                or len(inits) != 1
                or not m.matches(self.index.statement_of(inits[0].node), RESET)
            ):
                return None
            pattern = {id(block), id(increments[0]), id(self.index.statement_of(inits[0].node))}
            uses = [access.node for a in bindings for access in a.references] + [a.node for a in bindings]
            if not all(self.index.is_inside(node, pattern) for node in uses):
                return None
            found[name.value] = (increments[0], self.index.statement_of(inits[0].node))
        return found

    def shows_only_the_loss(
        self, loop: TrainingLoop, report: cst.SimpleStatementLine, accumulators: dict
    ) -> bool:
        """Whether a print shows nothing the step computed but the loss (and running sums of it):
        counters, the epoch and values fixed before the step are fine."""
        losses = {
            b.body[0].value.func.value.value
            for b in [loop.backward, *loop.backwards]
            if b is not None and isinstance(b.body[0].value.func.value, cst.Name)
        }
        if not losses:
            return False
        call = report.body[0].value
        for called in m.findall(call, m.Call(func=m.Name())):
            if called.func.value not in PURE_BUILTINS:
                return False
        batch = {id(loop.batch_loop.body)}
        for name in m.findall(call, m.Name()):
            parent = self.index.parent(name)
            if (isinstance(parent, cst.Attribute) and parent.attr is name) or (
                isinstance(parent, cst.Call) and parent.func is name
            ):
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
        return bool(
            m.findall(
                value,
                m.Call(
                    func=m.Attribute(value=m.Name(m.MatchIfTrue(lambda n: n in losses)), attr=m.Name("item"))
                ),
            )
        )


class ScalarWriterAnalysis(AnalysisPart):
    """A part of the analysis: `writer.add_scalar(tag, value, step)` in the training code is
    `self.log(tag, value)`, the writer's folder the Trainer's TensorBoardLogger."""

    def find_scalar_writer(self, loop: TrainingLoop) -> None:
        trained = {id(loop.host)} | ({id(loop.function)} if loop.function is not None else set())
        for evaluation in (loop.validation, loop.test):
            if evaluation is not None and evaluation.function is not None:
                trained.add(id(evaluation.function))
        made = m.SimpleStatementLine(
            body=[m.Assign(targets=[m.AssignTarget(target=m.Name())], value=m.Call())]
        )
        for statement in self.index.findall(made, cst.SimpleStatementLine):
            call = statement.body[0].value
            if not self.index.called_name(call) & torch_names.SUMMARY_WRITERS or self.index.is_inside(
                statement, trained
            ):
                continue
            writer = self.scalar_writer(statement, trained)
            if writer is not None:
                loop.writer = writer
                return

    def scalar_writer(self, statement: cst.SimpleStatementLine, trained: set[int]) -> ScalarWriter | None:
        """The writer, when every use of it is an add_scalar statement in the training code, or
        closing it: anything else (histograms, images, a writer passed on) keeps the writer as it was."""
        target = statement.body[0].targets[0].target
        call = statement.body[0].value
        scalars, closing = [], []
        for assignment in self.index.assignments(target):
            if assignment.node is not target:
                return None  # assigned again somewhere
            for access in assignment.references:
                use = self.index.statement_of(access.node)
                method = m.SimpleStatementLine(
                    body=[m.Expr(value=m.Call(func=m.Attribute(value=m.Name(target.value), attr=m.Name())))]
                )
                if not m.matches(use, method):
                    return None
                name = use.body[0].value.func.attr.value
                arguments = use.body[0].value.args
                if (
                    name == "add_scalar"
                    and self.index.is_inside(use, trained)
                    and len(arguments) >= 2
                    and arguments[0].keyword is None
                    and arguments[1].keyword is None
                ):
                    scalars.append(use)
                elif name in ("close", "flush") and not self.index.is_inside(use, trained):
                    closing.append(use)
                else:
                    return None
        log_dir = [a.value for a in call.args if a.keyword is None or a.keyword.value == "log_dir"][:1]
        return (
            ScalarWriter(
                statement,
                log_dir[0] if log_dir else None,
                scalars,
                closing,
                self.only_import_of(call.func, statement),
            )
            if scalars
            else None
        )

    def only_import_of(self, name: cst.BaseExpression, user: cst.CSTNode) -> list[cst.SimpleStatementLine]:
        """`from torch.utils.tensorboard import SummaryWriter` when it imports nothing else and the
        writer was its only user."""
        if not isinstance(name, cst.Name):
            return []
        bindings = self.index.assignments(name)
        if len(bindings) != 1 or any(
            a.node is not name and not self.index.is_inside(a.node, {id(user)})
            for a in bindings[0].references
        ):
            return []
        statement = self.index.statement_of(bindings[0].node)
        single = m.SimpleStatementLine(body=[m.ImportFrom(names=[m.ImportAlias()])])
        return [statement] if m.matches(statement, single) else []
