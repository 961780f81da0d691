"""What LS101 and LS103 reported when they were decided by the converter's analysis (libcst),
before they moved to `ast` (loopshift/lint/raw_loops.py): the reference the new rules are
tested against, so that no loop and no device move the analysis found goes unreported."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import libcst as cst
import libcst.matchers as m

from loopshift.analysis import BACKWARD
from loopshift.devices import DeviceOracle
from loopshift.diagnostics import Span
from loopshift.lint.rule import Context

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
    oracle = DeviceOracle(context.index, context.analyzer.resolve)
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
