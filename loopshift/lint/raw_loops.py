"""The hand-written training loops of a module, as analysis finds them (LS101 reports them, LS103
looks inside them)."""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst
import libcst.matchers as m

from ..analysis import BACKWARD

# Analysis problems that stand for a raw training loop convert could not take over.
RAW_LOOP_PROBLEMS = {"LS001", "LS002", "LS006"}
HOLDS_BACKWARD = m.For(body=m.IndentedBlock(body=[m.ZeroOrMore(), BACKWARD, m.ZeroOrMore()]))
STEPS = m.Call(func=m.Attribute(attr=m.Name("step") | m.Name("zero_grad")))


@dataclass
class RawLoop:
    node: cst.CSTNode  # where it is reported: the batch loop, or the node analysis names
    batch_loops: list[cst.CSTNode]  # the loops whose bodies are the training step
    reason: str | None  # why convert cannot take it over; None when it can


class BackwardInLoop(cst.CSTVisitor):
    """Whether a `x.backward(...)` statement sits in a for or while loop: every loop analysis
    finds starts there. A walk over statements only, far cheaper than the metadata analysis needs."""

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
        return False  # expressions hold no statements


def raw_training_loops(context) -> list[RawLoop]:
    """The hand-written training loops analysis found, outside any LightningModule."""
    walk = BackwardInLoop()
    context.module.visit(walk)
    if not walk.found:
        return []
    code = context.training
    loops = [RawLoop(loop.batch_loop, [loop.batch_loop], None) for loop in code.loops]
    for problem, reason, node in code.problems:
        if problem in RAW_LOOP_PROBLEMS and all(loop.node is not node for loop in loops):
            batch_loops = batch_loops_at(context, node)
            # a loop that calls backward() but never steps is gradient code (a check, a test), not training
            if any(m.findall(loop, STEPS) for loop in batch_loops):
                loops.append(RawLoop(node, batch_loops, reason))
    return [loop for loop in loops if not context.lightning.is_inside_module_class(loop.node)]


def batch_loops_at(context, node: cst.CSTNode) -> list[cst.CSTNode]:
    """The loops that run the step, for a node analysis reported: loops below it that call
    backward(), else the node itself when it is a loop, else the loop around it."""
    inner = m.findall(node, HOLDS_BACKWARD)
    if inner:
        return list(inner)
    if isinstance(node, (cst.For, cst.While)):
        return [node]
    return [next((a for a in context.index.ancestors(node) if isinstance(a, (cst.For, cst.While))), node)]
