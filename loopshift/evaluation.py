"""Evaluation loops run once per epoch: a function such as `test(model, device, loader)` called
from the epoch loop, or a `with torch.no_grad(): for ... in val_loader:` block inline. They become
Lightning's validation: `on_validation_epoch_start` / `validation_step` / `on_validation_epoch_end`.
The same shapes after training, evaluating the trained model, become its test (`trainer.test`)."""

from __future__ import annotations

import libcst as cst
import libcst.matchers as m

from .analysis_part import AnalysisPart
from .index import CodeIndex
from .resolution import Resolver
from .stepping import SteppingAnalysis
from .training import EvaluationLoop, TrainingCode, TrainingLoop
from .util import method_call

NO_GRAD = {
    "torch.no_grad",
    "torch.inference_mode",
    "torch.autograd.grad_mode.no_grad",
    "torch.autograd.grad_mode.inference_mode",
}


class EvaluationAnalysis(AnalysisPart):
    """A part of the analysis: the validation and test loops that become validation_step / test_step."""

    def __init__(
        self, index: CodeIndex, resolver: Resolver, code: TrainingCode, stepping: SteppingAnalysis
    ) -> None:
        super().__init__(index, resolver, code)
        self.stepping = stepping

    def find_validation(self, loop: TrainingLoop) -> None:
        segment = loop.segments.after
        for position, statement in enumerate(segment):
            validation = self.evaluation_call(loop, statement) or self.inline_evaluation(
                loop, statement, segment[:position]
            )
            if validation is not None:
                self.accept(validation)
                loop.validation = validation
                return

    def find_test(self, loop: TrainingLoop) -> None:
        """The first evaluation of the trained model after training, in the block where fit runs.
        A function that is also the validation stays a plain call: its code cannot be both."""
        block = list(self.index.parent(loop.host).body)
        later = block[block.index(loop.host) + 1 :]
        validation = loop.validation.function if loop.validation is not None else None
        for position, statement in enumerate(later):
            test = self.evaluation_call(loop, statement) or self.inline_evaluation(
                loop, statement, later[:position]
            )
            if (
                test is not None
                and (test.function is None or test.function is not validation)
                and self.evaluates_model(loop, test)
            ):
                self.accept(test)
                loop.test = test
                return

    def accept(self, evaluation: EvaluationLoop) -> None:
        if evaluation.function is not None:
            self.resolver.bind(
                evaluation.function, evaluation.call
            )  # its parameters are this call's arguments

    def evaluates_model(self, loop: TrainingLoop, evaluation: EvaluationLoop) -> bool:
        """Whether the evaluation runs the model that was trained (passed in, or used inline)."""
        code = self.index.module.code_for_node
        model = self.resolver.origins(loop.model_reference) if loop.model_reference is not None else []
        used = (
            [a.value for a in evaluation.call.args]
            if evaluation.call is not None
            else m.findall(evaluation.loop.body, m.Name() | m.Attribute())
        )
        return any(
            code(node) == loop.model
            and (not isinstance(node, cst.Name) or self.resolver.origins(node) == model)
            for node in used
        )

    def no_grad(self, node: cst.CSTNode) -> bool:
        return isinstance(node, cst.Call) and bool(self.index.called_name(node) & NO_GRAD)

    def evaluation_loop(self, statement: cst.BaseStatement, decorated: bool = False) -> cst.For | None:
        """`with torch.no_grad(): for batch in loader: ...` (or the bare loop in a no_grad function)."""
        if (
            isinstance(statement, cst.With)
            and len(statement.items) == 1
            and self.no_grad(statement.items[0].item)
            and len(statement.body.body) == 1
        ):
            statement = statement.body.body[0]
        elif not decorated:
            return None
        if not isinstance(statement, cst.For) or statement.orelse is not None:
            return None
        stepping = m.Call(func=m.Attribute(attr=m.Name("backward") | m.Name("step") | m.Name("zero_grad")))
        if m.findall(statement, stepping) or m.findall(statement, m.Break() | m.Continue() | m.Return()):
            return None
        iterable = statement.iter
        if isinstance(iterable, cst.Call):  # enumerate(loader) / tqdm(loader) are fine, range(...) is not
            return None
        return statement

    def evaluation_call(self, loop: TrainingLoop, statement: cst.BaseStatement) -> EvaluationLoop | None:
        names = m.Name() | m.Tuple(elements=[m.ZeroOrMore(m.Element(value=m.Name()))])
        call_statement = m.SimpleStatementLine(
            body=[
                m.Expr(value=m.Call(func=m.Name()))
                | m.Assign(targets=[m.AssignTarget(target=names)], value=m.Call(func=m.Name()))
            ]
        )
        if not m.matches(statement, call_statement):
            return None
        small = statement.body[0]
        call = small.value
        function = next(
            (a.node for a in self.index.assignments(call.func) if isinstance(a.node, cst.FunctionDef)), None
        )
        if (
            function is None
            or self.resolver.method_class(function) is not None
            or self.index.enclosing_function(function) is not None
        ):
            return None
        decorated = any(self.no_grad(d.decorator) for d in function.decorators)
        body = list(function.body.body)
        if body and m.matches(body[0], m.SimpleStatementLine(body=[m.Expr(value=m.SimpleString())])):
            body = body[1:]  # the docstring
        found = [(i, f) for i, s in enumerate(body) if (f := self.evaluation_loop(s, decorated)) is not None]
        if len(found) != 1:
            return None
        position, for_loop = found[0]
        after = body[position + 1 :]
        returned = None
        if after and m.matches(after[-1], m.SimpleStatementLine(body=[m.Return()])):
            returned = after.pop().body[0].value
        if m.findall(cst.Module(body=after), m.Return()) or m.findall(
            cst.Module(body=body[:position]), m.Return()
        ):
            return None
        target = small.targets[0].target if isinstance(small, cst.Assign) else None
        if target is not None and returned is not None:
            if isinstance(target, cst.Tuple) != isinstance(returned, cst.Tuple) or (
                isinstance(target, cst.Tuple) and len(target.elements) != len(returned.elements)
            ):
                return None
            # `accuracy = test(...)` with `return 100.0 * correct / n`: the epoch end computes it
            after.append(cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(target)], returned)]))
        before = [s for s in body[:position] if not self.stepping.is_mode_switch(s, loop)]
        metrics = (
            [e.value for e in target.elements]
            if isinstance(target, cst.Tuple)
            else [target]
            if target
            else []
        )
        return EvaluationLoop(for_loop, statement, before, after, [], function, call, metrics)

    def inline_evaluation(
        self, loop: TrainingLoop, statement: cst.BaseStatement, earlier: list[cst.BaseStatement]
    ) -> EvaluationLoop | None:
        """`with torch.no_grad(): for ... in loader:`, with the accumulators it reads set earlier."""
        for_loop = self.evaluation_loop(statement)
        if for_loop is None:
            return None
        read = {n.value for n in m.findall(for_loop, m.Name())}
        inits = [
            s
            for s in earlier
            if m.matches(
                s,
                m.SimpleStatementLine(
                    body=[
                        m.Assign(
                            targets=[m.AssignTarget(target=m.Name(m.MatchIfTrue(lambda name: name in read)))]
                        )
                    ]
                ),
            )
        ]
        switches = [s for s in earlier if self.stepping.is_mode_switch(s, loop) and method_call(s, "eval")]
        return EvaluationLoop(for_loop, statement, inits, [], inits + switches)
