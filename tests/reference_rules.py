"""What LS101, LS102 and LS103 reported when they were decided by the converter's analysis
(libcst), before they moved to `ast` (loopshift/lint/raw_loops.py, values.py): the reference
the new rules are tested against, so that no loop and no device move the analysis found goes
unreported."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import libcst as cst
import libcst.matchers as m

from loopshift import torch_names
from loopshift.analysis import BACKWARD
from loopshift.devices import DeviceOracle
from loopshift.diagnostics import Span
from loopshift.lint.rule import Context
from loopshift.lint.rules.manual_evaluation_loop import NO_GRAD

RAW_LOOP_PROBLEMS = {"LS001", "LS002", "LS006"}
HOLDS_BACKWARD = m.For(body=m.IndentedBlock(body=[m.ZeroOrMore(), BACKWARD, m.ZeroOrMore()]))
STEPS = m.Call(func=m.Attribute(attr=m.Name("step") | m.Name("zero_grad")))
MOVE = m.Call(func=m.Attribute(attr=m.Name("to") | m.Name("cuda")))


def analysis_findings(source: str, path: str) -> tuple[list[Span], list[Span]]:
    """(the spans LS101 reported, the spans LS103 reported), as the analysis-based rules did."""
    context = Context(source, path, cst.parse_module(source))
    walk = BackwardInLoop()
    context.module.visit(walk)
    if not walk.found:
        return [], []
    code = context.training
    loops = [(loop.batch_loop, [loop.batch_loop]) for loop in code.loops]
    for problem, _, node in code.problems:
        if problem in RAW_LOOP_PROBLEMS and all(found is not node for found, _ in loops):
            batch_loops = batch_loops_at(context, node)
            if any(m.findall(loop, STEPS) for loop in batch_loops):
                loops.append((node, batch_loops))
    loops = [loop for loop in loops if not context.lightning.is_inside_module_class(loop[0])]
    oracle = DeviceOracle(context.index, context.analyzer.resolver.resolve)
    moves = {
        id(call): call
        for _, batch_loops in loops
        for node in batch_loops
        for call in cast("Sequence[cst.Call]", m.findall(node, MOVE))
        if oracle.is_move(call)
    }
    return [context.index.span(node) for node, _ in loops], [context.index.span(c) for c in moves.values()]


class BackwardInLoop(cst.CSTVisitor):
    """Whether a `x.backward(...)` statement line sits in a for or while loop."""

    def __init__(self) -> None:
        self.depth = 0
        self.found = False

    def visit_For(self, node: cst.For) -> None:
        self.depth += 1

    def leave_For(self, node: cst.For) -> None:
        self.depth -= 1

    def visit_While(self, node: cst.While) -> None:
        self.depth += 1

    def leave_While(self, node: cst.While) -> None:
        self.depth -= 1

    def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> bool:
        self.found = self.found or (self.depth > 0 and m.matches(node, BACKWARD))
        return False


def batch_loops_at(context: Context, node: cst.CSTNode) -> list[cst.CSTNode]:
    inner = m.findall(node, HOLDS_BACKWARD)
    if inner:
        return list(inner)
    if isinstance(node, (cst.For, cst.While)):
        return [node]
    return [next((a for a in context.index.ancestors(node) if isinstance(a, (cst.For, cst.While))), node)]


def analysis_evaluation_loops(source: str, path: str) -> list[Span]:
    """The loops LS102 reported: over a loader, under no_grad or inference_mode."""
    context = Context(source, path, cst.parse_module(source))
    if context.lightning.imports:
        return []
    return [
        context.index.span(loop)
        for loop in context.index.nodes(cst.For)
        if loader_of(context, loop.iter) is not None and without_gradients(context, loop)
    ]


def without_gradients(context: Context, loop: cst.For) -> bool:
    index = context.index
    for ancestor in index.ancestors(loop):
        if isinstance(ancestor, cst.With) and any(
            isinstance(item.item, cst.Call) and index.called_name(item.item) & NO_GRAD
            for item in ancestor.items
        ):
            return True
        if isinstance(ancestor, cst.FunctionDef) and any(
            index.qualified_names(d.decorator.func if isinstance(d.decorator, cst.Call) else d.decorator)
            & NO_GRAD
            for d in ancestor.decorators
        ):
            return True
    return False


def loader_of(context: Context, iterable: cst.BaseExpression) -> cst.BaseExpression | None:
    index = context.index
    while (
        isinstance(iterable, cst.Call)
        and iterable.args
        and (index.called_name(iterable) & ({"builtins.enumerate"} | torch_names.PROGRESS_BARS))
    ):
        iterable = iterable.args[0].value
    if isinstance(iterable, cst.Call):
        return iterable if index.called_name(iterable) & torch_names.DATALOADERS else None
    if isinstance(iterable, cst.Name):
        assignment = context.analyzer.resolver.resolve(iterable)
        value = index.assigned_value(assignment) if assignment is not None else None
        if isinstance(value, cst.Call) and index.called_name(value) & torch_names.DATALOADERS:
            return iterable
        spelled = iterable.value
    elif isinstance(iterable, cst.Attribute):
        spelled = iterable.attr.value
    else:
        return None
    return iterable if "loader" in spelled.lower() else None
