"""Train and validation phases in one loop, as in the transfer-learning tutorials:

    for phase in ["train", "val"]:
        if phase == "train":
            model.train()
        else:
            model.eval()
        for inputs, labels in dataloaders[phase]:
            optimizer.zero_grad()
            with torch.set_grad_enabled(phase == "train"):
                loss = criterion(model(inputs), labels)
                if phase == "train":
                    loss.backward()
                    optimizer.step()
        ...

are one block per phase: the body written out once for each name, with `phase` replaced by it and
the tests on it decided. The train phase is then a batch loop with its step, the val phase an
evaluation loop under `torch.no_grad()`, which the analysis knows: `set_grad_enabled(False)` in
a loop's body becomes `torch.no_grad()` around the loop (grad mode changes no value, and
Lightning runs the whole validation step under inference mode). A `zero_grad()` in a phase that
never calls backward goes: it clears gradients no later statement reads before the next training
step clears them again. The rewrite is made only where it
means the same: the phases are string literals, the name is not rebound or read after the loop, and
no `break` or `continue` belongs to the phase loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import libcst as cst
import libcst.matchers as m

BACKWARD = m.Call(func=m.Attribute(attr=m.Name("backward")))
SET_GRAD_ENABLED = m.Call(func=m.Attribute(value=m.Name("torch"), attr=m.Name("set_grad_enabled")))
ZERO_GRAD = m.SimpleStatementLine(body=[m.Expr(value=m.Call(func=m.Attribute(attr=m.Name("zero_grad"))))])


def phases_unrolled(module: cst.Module) -> cst.Module | None:
    """The module with each phase loop written out once per phase; None when there is none."""
    rewriter = PhaseLoops()
    rewritten = module.visit(rewriter)
    return rewritten if rewriter.count else None


def phases_of(loop: cst.For) -> list[cst.SimpleString] | None:
    """The string literals of `for phase in ["train", "val"]:` that drives a backward call."""
    if not (
        isinstance(loop.target, cst.Name)
        and isinstance(loop.iter, (cst.List, cst.Tuple))
        and len(loop.iter.elements) > 1
        and all(isinstance(e.value, cst.SimpleString) and not e.value.prefix for e in loop.iter.elements)
        and loop.orelse is None
        and m.findall(loop.body, BACKWARD)
    ):
        return None
    name = loop.target.value
    rebound = m.findall(
        loop.body,
        m.AssignTarget(target=m.Name(name))
        | m.AugAssign(target=m.Name(name))
        | m.For(target=m.Name(name))
        | m.NamedExpr(target=m.Name(name)),
    )
    tested = m.findall(loop.body, m.Comparison(left=m.Name(name)))
    if rebound or not tested or own_exits(loop.body):
        return None
    return [cast(cst.SimpleString, e.value) for e in loop.iter.elements]  # (checked above)


def own_exits(node: cst.CSTNode) -> bool:
    """Whether a `break` or `continue` of this loop's body belongs to it (not to an inner loop)."""
    found = False

    class Exits(cst.CSTVisitor):
        def visit_For(self, node: cst.For) -> bool:
            return False

        def visit_While(self, node: cst.While) -> bool:
            return False

        def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
            return False

        def visit_Break(self, node: cst.Break) -> None:
            nonlocal found
            found = True

        def visit_Continue(self, node: cst.Continue) -> None:
            nonlocal found
            found = True

    node.visit(Exits())
    return found


class PhaseLoops(cst.CSTTransformer):
    def __init__(self) -> None:
        self.count = 0

    def visit_Module(self, node: cst.Module) -> None:
        self.scopes: list[cst.Module | cst.FunctionDef] = [node]

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.scopes.append(node)

    def leave_FunctionDef(self, original: cst.FunctionDef, updated: cst.FunctionDef) -> cst.FunctionDef:
        self.scopes.pop()
        return updated

    def leave_IndentedBlock(
        self, original: cst.IndentedBlock, updated: cst.IndentedBlock
    ) -> cst.IndentedBlock:
        return updated.with_changes(body=self.rewritten(list(updated.body)))

    def leave_Module(self, original: cst.Module, updated: cst.Module) -> cst.Module:
        return updated.with_changes(body=self.rewritten(list(updated.body)))

    def rewritten(self, body: list[cst.BaseStatement]) -> list[cst.BaseStatement]:
        result: list[cst.BaseStatement] = []
        for statement in body:
            if (
                not isinstance(statement, cst.For)
                or (phases := phases_of(statement)) is None
                or self.used_elsewhere(statement)
            ):
                result.append(statement)
                continue
            self.count += 1
            for number, phase in enumerate(phases):
                # a suite's visit answers a suite (Phase and WithoutZeroGrad drop statements, never the
                # block)
                name = cast(cst.Name, statement.target).value  # (phases_of checked it)
                block = cast(cst.BaseSuite, statement.body.visit(Phase(name, phase)))
                if not m.findall(block, BACKWARD):
                    block = cast(cst.BaseSuite, block.visit(WithoutZeroGrad()))
                written = statements_of(block)
                if written and number == 0:
                    written[0] = written[0].with_changes(leading_lines=statement.leading_lines)
                elif written:
                    written[0] = written[0].with_changes(leading_lines=[cst.EmptyLine(indent=False)])
                result += written
        return result

    def used_elsewhere(self, loop: cst.For) -> bool:
        """Whether the function (or module) holding the loop names its variable outside it. (Inner
        loops are rewritten first, so the scope's original tree is compared with the loop's.)"""
        name = m.Name(cast(cst.Name, loop.target).value)  # (a phase loop's: phases_of checked it)
        return len(m.findall(self.scopes[-1], name)) > len(m.findall(loop, name))


class WithoutZeroGrad(cst.CSTTransformer):
    def leave_SimpleStatementLine(
        self, original: cst.SimpleStatementLine, updated: cst.SimpleStatementLine
    ) -> cst.SimpleStatementLine | cst.RemovalSentinel:
        return cst.RemoveFromParent() if m.matches(updated, ZERO_GRAD) else updated


class Phase(cst.CSTTransformer):
    """One phase's copy of the body: the name replaced by its value, the tests on it decided."""

    def __init__(self, name: str, value: cst.SimpleString) -> None:
        self.name, self.value = name, value
        self.quotes: list[str] = []  # the quote of each f-string we are in
        self.loops: list[bool] = []  # each loop we are in: whether its body turns grad mode off

    def visit_FormattedString(self, node: cst.FormattedString) -> None:
        self.quotes.append(node.start[-1])

    def leave_FormattedString(
        self, original: cst.FormattedString, updated: cst.FormattedString
    ) -> cst.FormattedString:
        self.quotes.pop()
        return updated

    def leave_FormattedStringExpression(
        self, original: cst.FormattedStringExpression, updated: cst.FormattedStringExpression
    ) -> cst.BaseFormattedStringContent:
        """`f"{phase} loss"` is `f"val loss"` (with a format spec, `f"{'val':>5} loss"`)."""
        if (
            m.matches(original.expression, m.Name(self.name))
            and not original.format_spec
            and not original.conversion
        ):
            value = cast(str, self.value.evaluated_value)  # (phases_of took no prefixed string: no bytes)
            text = value.replace("{", "{{").replace("}", "}}")
            return cst.FormattedStringText(text)
        return updated

    def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.BaseExpression:
        if updated.value != self.name:
            return updated
        text = self.value.value
        if self.quotes and self.quotes[-1] == text[0]:  # inside an f-string quoted the same way
            other = "'" if text[0] == '"' else '"'
            text = other + text[1:-1] + other
        return cst.SimpleString(text)

    def leave_Comparison(self, original: cst.Comparison, updated: cst.Comparison) -> cst.BaseExpression:
        decided = decide(updated)
        return updated if decided is None else cst.Name("True" if decided else "False")

    def leave_BooleanOperation(
        self, original: cst.BooleanOperation, updated: cst.BooleanOperation
    ) -> cst.BaseExpression:
        """`False and x` is False, `True and x` is x (and the same for `or`)."""
        left = updated.left
        if not m.matches(left, m.Name("True") | m.Name("False")):
            return updated
        if (cast(cst.Name, left).value == "True") == isinstance(updated.operator, cst.And):
            return updated.right
        return left

    def leave_If(
        self, original: cst.If, updated: cst.If
    ) -> cst.BaseStatement | cst.FlattenSentinel[cst.BaseStatement] | cst.RemovalSentinel:
        if m.matches(updated.test, m.Name("True")):
            return cst.FlattenSentinel(with_leading_lines(updated.body, updated.leading_lines))
        if m.matches(updated.test, m.Name("False")):
            if updated.orelse is None:
                return cst.RemoveFromParent()
            if isinstance(updated.orelse, cst.If):  # elif
                return self.leave_If(
                    updated.orelse, updated.orelse.with_changes(leading_lines=updated.leading_lines)
                )
            return cst.FlattenSentinel(with_leading_lines(updated.orelse.body, updated.leading_lines))
        return updated

    def leave_With(
        self, original: cst.With, updated: cst.With
    ) -> cst.BaseStatement | cst.FlattenSentinel[cst.BaseStatement]:
        if len(updated.items) != 1 or not m.matches(updated.items[0].item, SET_GRAD_ENABLED):
            return updated
        call = cast(cst.Call, updated.items[0].item)  # (as matched)
        if len(call.args) != 1 or not m.matches(call.args[0].value, m.Name("True") | m.Name("False")):
            return updated
        enabled = cast(cst.Name, call.args[0].value).value == "True"  # (as matched)
        if enabled or self.loops:  # on: the block as it was; off: its loop runs under torch.no_grad()
            if not enabled:
                self.loops[-1] = True
            return cst.FlattenSentinel(with_leading_lines(updated.body, updated.leading_lines))
        no_grad = cst.parse_expression("torch.no_grad()")
        return updated.with_changes(items=[updated.items[0].with_changes(item=no_grad)])

    def visit_For(self, node: cst.For) -> None:
        self.loops.append(False)

    def leave_For(self, original: cst.For, updated: cst.For) -> cst.For | cst.With:
        if not self.loops.pop():
            return updated
        no_grad = cast(cst.With, cst.parse_statement("with torch.no_grad():\n    pass\n"))
        return no_grad.with_changes(
            body=no_grad.body.with_changes(body=[updated.with_changes(leading_lines=[])]),
            leading_lines=updated.leading_lines,
        )


def with_leading_lines(
    suite: cst.BaseSuite, leading_lines: Sequence[cst.EmptyLine]
) -> list[cst.BaseStatement]:
    """The block's statements, the first keeping the comments above the statement they replace."""
    statements = statements_of(suite)
    if statements:
        first = cast(cst.SimpleStatementLine | cst.BaseCompoundStatement, statements[0])
        statements[0] = first.with_changes(leading_lines=[*leading_lines, *first.leading_lines])
    return statements


def statements_of(suite: cst.BaseSuite) -> list[cst.BaseStatement]:
    """A block's statements; a one-line block (`if phase == "train": model.train()`) as one line."""
    if isinstance(suite, cst.SimpleStatementSuite):
        return [cst.SimpleStatementLine(body=suite.body)] if suite.body else []
    return list(cast(cst.IndentedBlock, suite).body)


def decide(comparison: cst.Comparison) -> bool | None:
    """`"train" == "train"`, `"val" != "train"`: known; anything else None."""
    if len(comparison.comparisons) != 1:
        return None
    target = comparison.comparisons[0]
    left, right = comparison.left, target.comparator
    if not (isinstance(left, cst.SimpleString) and isinstance(right, cst.SimpleString)):
        return None
    same = left.evaluated_value == right.evaluated_value
    if isinstance(target.operator, cst.Equal):
        return same
    if isinstance(target.operator, cst.NotEqual):
        return not same
    return None
