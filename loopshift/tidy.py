"""What a Lightning expert would not leave in a generated module: a loss module rebuilt every
epoch that `__init__` can build once, and assignments that nothing reads once the conversion
removed their readers (`iteration = batch_idx + 1` read only by a print of the loss)."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import libcst as cst
import libcst.matchers as m

# torch.nn losses whose modules hold parameters: not stateless
STATEFUL_LOSSES = {"AdaptiveLogSoftmaxWithLoss"}
# calls that read a function's locals by name: an assignment may be live without a Name reading it
INTROSPECTION = {"locals", "vars", "eval", "exec", "dir"}


def is_constant(node: cst.BaseExpression) -> bool:
    """A literal: a number, a string, True/False/None, or a tuple of them."""
    if isinstance(node, (cst.Integer, cst.Float, cst.Imaginary, cst.SimpleString)):
        return True
    if isinstance(node, cst.Name):
        return node.value in ("True", "False", "None")
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, (cst.Minus, cst.Plus)):
        return is_constant(node.expression)
    if isinstance(node, cst.ConcatenatedString):
        return is_constant(node.left) and is_constant(node.right)
    if isinstance(node, cst.Tuple):
        return all(isinstance(e, cst.Element) and is_constant(e.value) for e in node.elements)
    return False


def is_loss_module(qualified_names: set[str]) -> bool:
    """`torch.nn.BCELoss`, `torch.nn.modules.loss.CrossEntropyLoss`, ...: a loss module of torch.nn."""
    for name in qualified_names:
        module, _, leaf = name.rpartition(".")
        if module in ("torch.nn", "torch.nn.modules.loss") and leaf.endswith("Loss"):
            return leaf not in STATEFUL_LOSSES
    return False


def built_once(statement: cst.BaseStatement, called_name: Callable[[cst.Call], set[str]]) -> bool:
    """`criterion = nn.BCELoss()` (constant arguments only): building it once before training
    gives the same module as building it every epoch."""
    if not m.matches(
        statement,
        m.SimpleStatementLine(body=[m.Assign(targets=[m.AssignTarget(target=m.Name())], value=m.Call())]),
    ):
        return False
    assign = cast(cst.Assign, cast(cst.SimpleStatementLine, statement).body[0])  # (as matched)
    call = cast(cst.Call, assign.value)
    return is_loss_module(called_name(call)) and all(
        arg.star == "" and is_constant(arg.value) for arg in call.args
    )


def is_pure(node: cst.BaseExpression) -> bool:
    """An expression that only reads: names, attributes of them, literals and arithmetic on them."""
    if is_constant(node) or isinstance(node, cst.Name):
        return True
    if isinstance(node, cst.Attribute):
        return is_pure(node.value)
    if isinstance(node, cst.BinaryOperation):
        return is_pure(node.left) and is_pure(node.right)
    if isinstance(node, cst.UnaryOperation):
        return is_pure(node.expression)
    if isinstance(node, cst.BooleanOperation):
        return is_pure(node.left) and is_pure(node.right)
    if isinstance(node, cst.Comparison):
        return is_pure(node.left) and all(is_pure(c.comparator) for c in node.comparisons)
    return False


def has_comment(statement: cst.SimpleStatementLine) -> bool:
    return statement.trailing_whitespace.comment is not None or any(
        line.comment is not None for line in statement.leading_lines
    )


def without_dead_assignments(function: cst.FunctionDef) -> cst.FunctionDef:
    """The hook without `name = <pure expression>` lines whose name nothing else in the hook
    mentions (hook locals: no other hook or code after training reads them). A line with a
    comment stays, and so does every line of a hook that reads its locals by name."""
    names = [cast(cst.Name, n).value for n in m.findall(function.body, m.Name())]
    if INTROSPECTION & set(names):
        return function
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    dead = m.SimpleStatementLine(
        body=[
            m.Assign(
                targets=[m.AssignTarget(target=m.Name())],
                value=m.MatchIfTrue(is_pure),
            )
        ]
    )

    def live(statement: cst.BaseStatement) -> bool:
        if not m.matches(statement, dead):
            return True
        line = cast(cst.SimpleStatementLine, statement)  # (as matched)
        if has_comment(line):
            return True
        target = cast(cst.Name, cast(cst.Assign, line.body[0]).targets[0].target).value
        return counts[target] > 1 or target == "self"

    if not isinstance(function.body, cst.IndentedBlock):
        return function  # `def f(): x = 1`: no statement lines to drop
    body = function.body.body
    kept = [s for s in body if live(s)]
    if len(kept) == len(body) or not kept:
        return function
    if kept[0] is not body[0]:
        # (every statement has leading_lines; BaseStatement does not declare them)
        first = cast(cst.SimpleStatementLine | cst.BaseCompoundStatement, body[0])
        kept[0] = kept[0].with_changes(leading_lines=first.leading_lines)
    return function.with_changes(body=function.body.with_changes(body=kept))
