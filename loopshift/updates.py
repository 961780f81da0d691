"""Parameter updates written by hand, without a torch.optim optimizer:

    loss.backward()
    with torch.no_grad():
        for param in model.parameters():        # or raw tensors: `w1 -= lr * w1.grad`
            param -= learning_rate * param.grad
    model.zero_grad()                          # or `w1.grad = None`

or, outside autograd through `.data` (no `torch.no_grad()` needed):

    for param in model.parameters():
        param.data.add_(-learning_rate * param.grad)   # or `.sub_(lr * p.grad)`, `p.data -= lr * p.grad`

Lightning runs such a step under manual optimization, the update kept as it was: an SGD optimizer
would round differently (it fuses the multiply and the add). Raw tensors with `requires_grad=True`
become parameters of the LightningModule, so that Lightning moves them with it.
"""

from __future__ import annotations

import libcst as cst
import libcst.matchers as m

from .analysis_part import AnalysisPart
from .evaluation import EvaluationAnalysis
from .index import CodeIndex
from .resolution import Resolver
from .training import HandUpdate, TrainingCode

READS_GRAD = m.Attribute(attr=m.Name("grad"))
IN_PLACE = {"sub_", "add_", "copy_", "addcmul_", "addcdiv_", "mul_"}


class HandUpdateAnalysis(AnalysisPart):
    """A part of the analysis: parameters updated by hand from their gradients, without torch.optim."""

    def __init__(
        self, index: CodeIndex, resolver: Resolver, code: TrainingCode, evaluation: EvaluationAnalysis
    ) -> None:
        super().__init__(index, resolver, code)
        self.evaluation = evaluation

    def hand_update(self, batch_loop: cst.For | cst.While) -> HandUpdate | None:
        """The block of the step that moves parameters against their gradients: `with torch.no_grad():`,
        or `for p in model.parameters():` updating `p.data`."""
        for statement in batch_loop.body.body:
            guarded = (
                isinstance(statement, cst.With)
                and len(statement.items) == 1
                and self.evaluation.no_grad(statement.items[0].item)
            )
            if not guarded and not (isinstance(statement, cst.For) and self.parameters_of(statement.iter)):
                continue
            updates = [
                node
                for node in m.findall(statement, m.AugAssign() | m.Call(func=m.Attribute()))
                if self.updates_from_gradient(node)
            ]
            if not updates or not (guarded or all(self.through_data(node) for node in updates)):
                continue
            model = next(
                (
                    self.parameters_of(f.iter)
                    for f in m.findall(statement, m.For())
                    if self.parameters_of(f.iter) is not None
                ),
                None,
            )
            tensors = [
                target
                for node in updates
                if isinstance(node, cst.AugAssign)
                and isinstance(target := node.target, cst.Name)
                and self.requires_grad(target, batch_loop)
            ]
            if model is not None or tensors:
                return HandUpdate(statement, model, list({t.value: t for t in tensors}.values()))
        return None

    @staticmethod
    def updates_from_gradient(node: cst.CSTNode) -> bool:
        """`p -= lr * p.grad`, `p.data.sub_(lr * p.grad)`."""
        if isinstance(node, cst.AugAssign):
            return bool(m.findall(node.value, READS_GRAD))
        return node.func.attr.value in IN_PLACE and any(m.findall(a.value, READS_GRAD) for a in node.args)

    @staticmethod
    def through_data(node: cst.AugAssign | cst.Call) -> bool:
        """`p.data -= ...`, `p.data.add_(...)`: an update autograd does not record."""
        changed = node.target if isinstance(node, cst.AugAssign) else node.func.value
        return m.matches(changed, m.Attribute(attr=m.Name("data")))

    @staticmethod
    def parameters_of(iterable: cst.BaseExpression) -> cst.BaseExpression | None:
        """`model` in `model.parameters()`."""
        if m.matches(iterable, m.Call(func=m.Attribute(attr=m.Name("parameters")), args=[])):
            return iterable.func.value
        return None

    def requires_grad(self, name: cst.Name, batch_loop: cst.CSTNode) -> bool:
        """A tensor made with `requires_grad=True` before the loop (a raw parameter)."""
        made = [a for a in self.index.assignments(name) if self.index.is_before(a.node, batch_loop)]
        value = self.index.assigned_value(made[0]) if len(made) == 1 else None
        return isinstance(value, cst.Call) and any(
            arg.keyword is not None
            and arg.keyword.value == "requires_grad"
            and m.matches(arg.value, m.Name("True"))
            for arg in value.args
        )
