"""Epochs counted by hand, `epoch = 0` / `while epoch < n:` / ... / `epoch += 1`, are the loop
`for epoch in range(n):`, which the analysis knows. The rewrite is made only where it means the same:
the counter starts right before the loop, the body changes it only by its last statement, no
`continue` skips that statement, the bound is not rebound in the loop, and nothing reads the counter
after the loop (where the `while` left `n`, the `for` would leave `n - 1`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import libcst as cst
import libcst.matchers as m


def counted_loops_as_ranges(module: cst.Module) -> cst.Module | None:
    """The module with each such `while` written as a `for` over `range`; None when there is none."""
    rewriter = CountedLoops()
    rewritten = module.visit(rewriter)
    return rewritten if rewriter.count else None


class CountedLoops(cst.CSTTransformer):
    def __init__(self) -> None:
        self.count = 0

    def leave_IndentedBlock(
        self, original: cst.IndentedBlock, updated: cst.IndentedBlock
    ) -> cst.IndentedBlock:
        return updated.with_changes(body=self.rewritten(list(updated.body)))

    def leave_Module(self, original: cst.Module, updated: cst.Module) -> cst.Module:
        return updated.with_changes(body=self.rewritten(list(updated.body)))

    def rewritten(self, body: list[cst.BaseStatement]) -> list[cst.BaseStatement]:
        result: list[cst.BaseStatement] = []
        position = 0
        while position < len(body):
            start, loop = body[position], body[position + 1] if position + 1 < len(body) else None
            found = self.counted(start, loop, body[position + 2 :]) if loop is not None else None
            if found is None:
                result.append(start)
                position += 1
                continue
            name, begin, bound = found
            # (what counted found: a counter's line, then its while loop)
            start, loop = cast(cst.SimpleStatementLine, start), cast(cst.While, loop)
            span = bound if begin == "0" else f"{begin}, {bound}"
            header = cst.ensure_type(
                cst.parse_statement(f"for {name} in range({span}):\n    pass\n"), cst.For
            )
            result.append(
                header.with_changes(
                    body=loop.body.with_changes(body=loop.body.body[:-1]),
                    leading_lines=[*start.leading_lines, *loop.leading_lines],
                )
            )
            self.count += 1
            position += 2
        return result

    def counted(
        self, start: cst.BaseStatement, loop: cst.BaseStatement, after: Sequence[cst.BaseStatement]
    ) -> tuple[str, str, str] | None:
        code = cst.Module([]).code_for_node
        counter = m.SimpleStatementLine(
            body=[m.Assign(targets=[m.AssignTarget(target=m.Name())], value=m.Integer())]
        )
        if not (
            m.matches(start, counter)
            and isinstance(loop, cst.While)
            and loop.orelse is None
            # a one-line body (`while i < n: i += 1`) has no statement line to match the increment
            and isinstance(loop.body, cst.IndentedBlock)
        ):
            return None
        assign = cast(cst.Assign, cast(cst.SimpleStatementLine, start).body[0])  # (as matched)
        name = cast(cst.Name, assign.targets[0].target).value
        if not m.matches(
            loop.test,
            m.Comparison(left=m.Name(name), comparisons=[m.ComparisonTarget(operator=m.LessThan())]),
        ):
            return None
        bound = cast(cst.Comparison, loop.test).comparisons[0].comparator  # (as matched)
        body = list(loop.body.body)
        increment = m.SimpleStatementLine(
            body=[m.AugAssign(target=m.Name(name), operator=m.AddAssign(), value=m.Integer("1"))]
        )
        if (
            not body
            or not m.matches(body[-1], increment)
            or m.findall(cst.IndentedBlock(body=body), m.Continue())
        ):
            return None
        bound_names = {cast(cst.Name, n).value for n in m.findall(bound, m.Name())}
        bindings = m.findall(cst.IndentedBlock(body=body[:-1]), m.AssignTarget() | m.AugAssign() | m.For())
        rebound = {
            cast(cst.Name, n).value for b in bindings for n in m.findall(getattr(b, "target", b), m.Name())
        }
        if name in rebound or bound_names & rebound or m.findall(bound, m.Call()):
            return None
        if any(m.findall(statement, m.Name(name)) for statement in after):
            return None
        return name, code(assign.value), code(bound)
