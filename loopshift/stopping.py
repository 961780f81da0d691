"""Hand-written early stopping at the end of an epoch, on a metric the validation logs:

    if val_loss < best - 1e-4:          # or `>` for a metric that should grow
        best = val_loss
        wait = 0
        ...                             # kept: checkpoints, best weights, prints
    else:
        wait += 1
        if wait >= patience:
            break

is Lightning's `EarlyStopping(monitor="val_loss", mode="min", patience=patience, min_delta=1e-4)`:
it counts the same validation checks, with the same strict improvement test, from the same start.
"""

from __future__ import annotations

import libcst as cst
import libcst.matchers as m

from .analysis_part import AnalysisPart
from .training import EarlyStopping, TrainingLoop

MODES = {cst.LessThan: ("min", cst.Subtract), cst.GreaterThan: ("max", cst.Add)}
INFINITY = m.Call(
    func=m.Name("float"), args=[m.Arg(value=m.SimpleString('"inf"') | m.SimpleString("'inf'"))]
) | m.Attribute(value=m.Name("math") | m.Name("np") | m.Name("numpy") | m.Name("torch"), attr=m.Name("inf"))


class EarlyStoppingAnalysis(AnalysisPart):
    """A part of the analysis: a patience check on a monitored metric that EarlyStopping takes over."""

    def find_early_stopping(self, loop: TrainingLoop) -> None:
        if loop.validation is None or not loop.validation.metrics:
            return
        segment = loop.segments.after
        for position, statement in enumerate(segment):
            found = self.patience_check(loop, statement, segment[position + 1 : position + 2])
            if found is not None:
                loop.early_stopping = found
                return

    def patience_check(
        self, loop: TrainingLoop, statement: cst.BaseStatement, following: list[cst.BaseStatement]
    ) -> EarlyStopping | None:
        if not m.matches(statement, m.If(test=m.Comparison(comparisons=[m.ComparisonTarget()]))):
            return None
        comparison = statement.test
        metric = next(
            (name for name in loop.validation.metrics if self.same_variable(comparison.left, name)), None
        )
        operator = type(comparison.comparisons[0].operator)
        if metric is None or operator not in MODES:
            return None
        mode, delta_operator = MODES[operator]
        best, min_delta = comparison.comparisons[0].comparator, None
        if isinstance(best, cst.BinaryOperation) and isinstance(best.operator, delta_operator):
            best, min_delta = best.left, best.right  # `best - 1e-4`: an improvement must beat it by that much
        if not isinstance(best, cst.Name) or not self.starts_unbeaten(best, mode, loop):
            return None
        body = list(statement.body.body)
        if not any(
            m.matches(
                s,
                m.SimpleStatementLine(
                    body=[
                        m.Assign(
                            targets=[m.AssignTarget(target=m.Name(best.value))], value=m.Name(metric.value)
                        )
                    ]
                ),
            )
            for s in body
        ):
            return None  # the best value must be the metric itself, as EarlyStopping's is
        resets = [
            s
            for s in body
            if m.matches(
                s,
                m.SimpleStatementLine(
                    body=[m.Assign(targets=[m.AssignTarget(target=m.Name())], value=m.Integer("0"))]
                ),
            )
        ]
        for reset in resets:
            counter = reset.body[0].targets[0].target
            stop = self.counted_stop(statement.orelse, counter.value, following)
            if stop is None:
                continue
            patience, check = stop
            init = self.counter_init(counter, loop, {id(statement), id(check)})
            if init is not None:
                return EarlyStopping(metric, mode, patience, min_delta, statement, reset, check, init)
        return None

    def counted_stop(self, orelse, counter: str, following: list[cst.BaseStatement]):
        """`else: wait += 1; if wait >= patience: break` (the check inside the else or right after
        the if statement): (patience, the statement that stops)."""
        if not isinstance(orelse, cst.Else):
            return None
        increment = m.SimpleStatementLine(
            body=[m.AugAssign(target=m.Name(counter), operator=m.AddAssign(), value=m.Integer("1"))]
        )
        branch = list(orelse.body.body)
        if not branch or not m.matches(branch[0], increment):
            return None
        checks = branch[1:] if len(branch) > 1 else following
        if len(checks) != 1 or len(branch) > 2:
            return None
        check = checks[0]
        stop = m.If(
            test=m.Comparison(
                left=m.Name(counter), comparisons=[m.ComparisonTarget(operator=m.GreaterThanEqual())]
            ),
            orelse=None,
        )
        if not m.matches(check, stop):
            return None
        *prints, last = check.body.body
        if not m.matches(last, m.SimpleStatementLine(body=[m.Break()])) or not all(
            m.matches(p, m.SimpleStatementLine(body=[m.Expr(value=m.Call(func=m.Name("print")))]))
            for p in prints
        ):
            return None  # anything but a message and the break would be lost with the counter
        return check.test.comparisons[0].comparator, check

    def starts_unbeaten(self, best: cst.Name, mode: str, loop: TrainingLoop) -> bool:
        """EarlyStopping's best starts at +inf (min) / -inf (max): so must the user's."""
        before = [a for a in self.index.assignments(best) if self.index.is_before(a.node, loop.host)]
        if len(before) != 1:
            return False
        value = self.index.assigned_value(before[0])
        if mode == "max":
            if not isinstance(value, cst.UnaryOperation) or not isinstance(value.operator, cst.Minus):
                return False
            value = value.expression
        return value is not None and m.matches(value, INFINITY)

    def counter_init(
        self, counter: cst.Name, loop: TrainingLoop, pattern: set[int]
    ) -> cst.BaseStatement | None:
        """`wait = 0` before training, when the counter is used nowhere but in the pattern."""
        bindings = self.index.assignments(counter)
        inits = [a for a in bindings if self.index.is_before(a.node, loop.host)]
        if len(inits) != 1 or not m.matches(self.index.assigned_value(inits[0]), m.Integer("0")):
            return None
        statement = self.index.statement_of(inits[0].node)
        if not m.matches(
            statement, m.SimpleStatementLine(body=[m.Assign(targets=[m.AssignTarget(target=m.Name())])])
        ):
            return None
        uses = [access.node for a in bindings for access in a.references] + [a.node for a in bindings]
        if not all(self.index.is_inside(node, pattern) or node is inits[0].node for node in uses):
            return None
        return statement

    def same_variable(self, name: cst.BaseExpression, metric: cst.Name) -> bool:
        return isinstance(name, cst.Name) and any(a.node is metric for a in self.index.assignments(name))
