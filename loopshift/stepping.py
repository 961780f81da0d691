"""How the optimizer step is driven: gradient accumulation, mixed precision, clipping, the
schedulers and mode switches inside the batch loop."""

from __future__ import annotations

import libcst as cst
import libcst.matchers as m

from . import torch_names
from .analysis_part import AnalysisPart
from .idioms import clipping
from .idioms import precision as amp
from .idioms.clipping import TrainerClipping
from .training import Accumulation, OptimizerDef, TrainingLoop
from .util import held_object, method_call


class SteppingAnalysis(AnalysisPart):
    """A part of the analysis: how the optimizer step is driven (mixed precision, accumulation,
    clipping, zero_grad)."""

    # -- mixed precision and accumulation: what the Trainer's precision= and accumulate_grad_batches= own
    def is_grad_scaler(self, name: cst.Name) -> bool:
        assignment = self.resolver.resolve(name)
        value = self.index.assigned_value(assignment) if assignment else None
        return amp.is_grad_scaler(self.index, value)

    def autocast_of(self, statement: cst.With) -> cst.Call | None:
        if (
            len(statement.items) == 1
            and isinstance(call := statement.items[0].item, cst.Call)
            and self.index.called_name(call) & torch_names.AUTOCASTS
            and statement.items[0].asname is None
        ):
            return call
        return None

    def mixed_precision(
        self, loop: TrainingLoop, body: list[cst.BaseStatement], autocast: cst.With | None
    ) -> bool:
        """`with torch.autocast(...)` + GradScaler -> Trainer(precision=...), exactly as the script chose."""
        autocasts = [s for s in body if isinstance(s, cst.With) and self.autocast_of(s) is not None]
        if autocast is not None and autocast not in autocasts:
            autocasts.append(autocast)
        loss = loop.loss
        scaled = m.matches(
            loss, m.Call(func=m.Attribute(value=m.Name(), attr=m.Name("scale")), args=[m.Arg()])
        )
        scaler = loss.func.value if scaled and self.is_grad_scaler(loss.func.value) else None
        if scaler is not None:
            loop.loss = loss.args[0].value
            # in the batch loop, or in the accumulation condition around the step
            searched = body + [s for c in body if isinstance(c, cst.If) for s in c.body.body]
            loop.owned_statements += [
                s
                for s in searched
                if (c := method_call(s, "update") or method_call(s, "unscale_"))
                and m.matches(c.func.value, m.Name(scaler.value))
            ]
            loop.scaler = self.index.assignment_statement(self.resolver.resolve(scaler))
        if not autocasts and scaler is None:
            return True
        if len(autocasts) > 1:
            self.code.problem(
                "LS002", "several autocast blocks in one step are not converted", loop.batch_loop
            )
            return False
        loop.autocasts = autocasts
        loop.precision = self.precision_of(
            autocasts,
            self.index.assigned_value(self.resolver.resolve(scaler)) if scaler is not None else None,
        )
        return True

    def manual_scaling(self, batch_loop, statements: list, backwards: list, steps: list) -> tuple | None:
        """Under manual optimization, `scaler.scale(loss).backward()` / `scaler.step(opt)` / `scaler.update()`
        with autocast blocks -> precision=..., `self.manual_backward(loss)`, `opt.step()` (Lightning's
        optimizer unscales, steps and updates the scale). (scaler statement, dropped statements, autocast
        blocks, precision, the scaler's steps), or None with the obstacle said."""
        scale = m.Call(func=m.Attribute(value=m.Name(), attr=m.Name("scale")), args=[m.Arg()])
        scaled = [b for b in backwards if m.matches(b.body[0].value.func.value, scale)]
        scaler_steps = [s for s, _ in steps if self.is_grad_scaler_step(s)]
        if not scaled and not scaler_steps:
            return None, [], [], None, []  # autocast blocks without a scaler stay as written
        names = {b.body[0].value.func.value.func.value.value for b in scaled} | {
            s.body[0].value.func.value.value for s in scaler_steps
        }
        scaler = cst.Name(next(iter(names)))
        updates = [
            s for s in statements if (c := method_call(s, "update")) and m.matches(c.func.value, scaler)
        ]
        expected = (
            {id(b.body[0].value.func.value.func.value) for b in scaled}
            | {id(s.body[0].value.func.value) for s in scaler_steps}
            | {id(s.body[0].value.func.value) for s in updates}
        )
        assignment = self.resolver.resolve(scaled[0].body[0].value.func.value.func.value) if scaled else None
        uses = [a.node for a in assignment.references] if assignment is not None else []
        if (
            len(names) != 1
            or len(scaled) != len(backwards)
            or len(scaler_steps) != len(steps)
            or not self.is_grad_scaler(scaled[0].body[0].value.func.value.func.value)
            or any(id(use) not in expected for use in uses)
        ):
            self.manual_obstacle = (
                "GradScaler under manual optimization is converted when every backward is "
                "scaled, every step goes through it and it is used for nothing else (unscale_)"
            )
            return None
        statement = self.index.assignment_statement(assignment)
        autocasts = [
            s for s in batch_loop.body.body if isinstance(s, cst.With) and self.autocast_of(s) is not None
        ]
        precision = self.precision_of(autocasts, self.index.assigned_value(assignment))
        return statement, updates, autocasts, precision, scaler_steps

    def precision_of(self, autocasts: list[cst.With], scaler: cst.Call | None) -> tuple | None:
        """("16-mixed" or "bf16-mixed", the `enabled=` flag) from the autocast blocks and the scaler."""
        facts = [amp.autocast_of(self.index, self.autocast_of(w)) for w in autocasts]
        return amp.trainer_precision(facts, scaler)

    def accumulation(self, loop: TrainingLoop, condition: cst.If, body: list[cst.BaseStatement]) -> bool:
        """`if (i + 1) % N == 0 [or last batch]:` around the step -> accumulate_grad_batches=N."""
        index = loop_index(loop)
        every = m.Comparison(
            left=m.BinaryOperation(
                left=m.BinaryOperation(left=m.Name(index), operator=m.Add(), right=m.Integer("1")),
                operator=m.Modulo(),
            ),
            comparisons=[m.ComparisonTarget(operator=m.Equal(), comparator=m.Integer("0"))],
        )
        test = condition.test
        at_last = False
        if m.matches(test, m.BooleanOperation(operator=m.Or(), left=every)):
            test, at_last = test.left, True  # `or <last batch>`: Lightning steps on the last batch too
        if index is None or condition.orelse is not None or not m.matches(test, every):
            self.code.problem(
                "LS002", "optimizer.step() under a condition that is not gradient accumulation", condition
            )
            return False
        every_n = test.left.right
        code = self.index.module.code_for_node
        division = next((s for s in body if self.divides(s, loop, every_n)), None)
        if division is None and not m.matches(loop.loss, m.BinaryOperation(operator=m.Divide())):
            self.code.problem(
                "LS002",
                f"the loss is not divided by {code(every_n)} before backward; Lightning's "
                "accumulation divides it",
                condition,
            )
            return False
        reads = self.divided_reads(loop, body, division)
        undone = {
            id(read): product
            for read in reads
            if (product := self.undone_division(read, every_n)) is not None
        }
        loop.accumulation = Accumulation(
            condition,
            every_n,
            division,
            at_last,
            [r for r in reads if id(r) not in undone],
            self.constant(every_n),
            list(undone.values()),
        )
        if isinstance(loop.loss, cst.BinaryOperation):  # (loss / N).backward()
            loop.loss = loop.loss.left
        return True

    def divided_reads(self, loop: TrainingLoop, body: list, division) -> list[cst.Name]:
        """`total += loss.item()` after `loss = loss / N`: the loss as divided, which the step no longer
        divides."""
        if division is None:
            return []
        later = body[body.index(division) + 1 :]
        return [
            name
            for statement in later
            if statement is not loop.backward
            for name in m.findall(statement, m.Name(loop.loss.value))
            if not m.matches(
                self.index.parent(name),
                m.Attribute(attr=name)
                | m.Arg(keyword=name)
                | m.AssignTarget(target=name)
                | m.AugAssign(target=name),
            )
        ]

    def undone_division(self, read: cst.Name, every_n: cst.BaseExpression) -> cst.BinaryOperation | None:
        """`loss.item() * N` (or `loss * N`): the script undid the division itself; now that is
        `loss.item()`."""
        code = self.index.module.code_for_node
        node = self.index.parent(read)
        if m.matches(node, m.Attribute(attr=m.Name("item"))) and m.matches(
            self.index.parent(node), m.Call(func=node, args=[])
        ):
            node = self.index.parent(node)
        else:
            node = read
        product = self.index.parent(node)
        if (
            m.matches(product, m.BinaryOperation(operator=m.Multiply()))
            and product.left is node
            and code(product.right) == code(every_n)
        ):
            return product
        return None

    def constant(self, expression: cst.BaseExpression) -> bool:
        """A number or module-level names: the same expression in the LightningModule's code."""
        return all(
            all(self.index.is_global(a) for a in self.index.assignments(n)) and self.index.assignments(n)
            for n in m.findall(expression, m.Name())
        )

    def divides(self, statement: cst.BaseStatement, loop: TrainingLoop, every_n: cst.BaseExpression) -> bool:
        """`loss = loss / N`, `loss = criterion(...) / N` or `loss /= N` for the backward's loss."""
        if not isinstance(loop.loss, cst.Name):
            return False
        same = m.Name(loop.loss.value)
        divisor = self.index.module.code_for_node(every_n)
        for small in getattr(statement, "body", []) if isinstance(statement, cst.SimpleStatementLine) else []:
            if (
                m.matches(
                    small,
                    m.Assign(
                        targets=[m.AssignTarget(target=same)], value=m.BinaryOperation(operator=m.Divide())
                    ),
                )
                and self.index.module.code_for_node(small.value.right) == divisor
            ):
                return True
            if (
                m.matches(small, m.AugAssign(target=same, operator=m.DivideAssign()))
                and self.index.module.code_for_node(small.value) == divisor
            ):
                return True
        return False

    def collect_step_extras(self, loop: TrainingLoop, body: list[cst.BaseStatement]) -> None:
        switches = [s for s in body if self.is_mode_switch(s, loop)]
        if not any(method_call(s, "eval") for s in switches):
            # `model.train()` in a step that never leaves train mode is Lightning's; a step that
            # evaluates after its update (`model.eval()`) keeps both, in its order
            loop.mode_switches += switches
        for statement in body:
            call = method_call(statement, "step")
            if call is not None and not call.args and (root := held_object(call.func.value)):
                scheduler = self.resolver.definition_of(root, self.code.schedulers)
                if scheduler is not None:
                    loop.schedulers.append((scheduler, "step"))
                    loop.scheduler_steps.append(statement)
            clip = self.clip_of(statement, loop)
            if clip is not None:
                loop.clip = clip

    def clip_of(self, statement: cst.BaseStatement, loop: TrainingLoop) -> TrainerClipping | None:
        """Clipping between backward and step (see idioms/clipping.py)."""
        fact = clipping.clipping_at(self.index, statement)
        if fact is None:
            return None
        clip = clipping.for_trainer(fact, loop.model, self.index.module.code_for_node)
        if clip is None:
            self.code.problem("LS002", clipping.NOT_CONVERTED, statement)
        return clip

    def is_mode_switch(self, statement: cst.BaseStatement, loop: TrainingLoop) -> bool:
        for method in ("train", "eval"):
            call = method_call(statement, method)
            if (
                call is not None
                and not call.args
                and self.index.module.code_for_node(call.func.value) == loop.model
            ):
                return True
        return False

    def is_grad_scaler_step(self, statement: cst.BaseStatement) -> bool:
        call = method_call(statement, "step")
        return (
            call is not None
            and isinstance(call.func.value, cst.Name)
            and self.is_grad_scaler(call.func.value)
        )

    @staticmethod
    def zeroes_gradients(call: cst.Call) -> bool | None:
        """Whether `zero_grad(...)` zeroes the gradients in place (`set_to_none=False`) rather than
        dropping them; None when a value known only at run time decides."""
        if not call.args:
            return False
        value = call.args[0].value
        if (
            m.matches(value, m.Name("False") | m.Name("True"))
            and not call.args[0].star
            and (call.args[0].keyword is None or call.args[0].keyword.value == "set_to_none")
        ):
            return value.value == "False"
        return None

    def clears(self, call: cst.Call, optimizer: OptimizerDef) -> bool:
        """Whether `x.zero_grad()` clears the optimizer's gradients (the optimizer or its model)."""
        root = held_object(call.func.value)
        if root is None:
            return False
        if self.resolver.definition_of(root, self.code.optimizers) is optimizer:
            return True
        if self.index.module.code_for_node(root) == optimizer.model:
            return True
        # `model.zero_grad()` in train(model, ...) for the `net` whose parameters main() gave the optimizer
        reference = optimizer.model_reference
        return (
            isinstance(root, cst.Name)
            and isinstance(reference, cst.Name)
            and bool(
                {id(o) for o in self.resolver.origins(root)}
                & {id(o) for o in self.resolver.origins(reference)}
            )
        )


def loop_index(loop: TrainingLoop) -> str | None:
    return loop.index_name if loop.index_start is None else None
