"""Small matchers over libcst nodes shared by the analysis modules."""

from __future__ import annotations

from typing import cast

import libcst as cst
import libcst.matchers as m


def method_call(statement: cst.CSTNode, method: str) -> cst.Call | None:
    """`receiver.method(...)` when statement is exactly that expression statement."""
    if m.matches(
        statement, m.SimpleStatementLine(body=[m.Expr(value=m.Call(func=m.Attribute(attr=m.Name(method))))])
    ):
        return cast(cst.Call, cast(cst.Expr, cast(cst.SimpleStatementLine, statement).body[0]).value)
    return None


def without_moves(expression: cst.BaseExpression) -> cst.BaseExpression:
    """`Net()` for `Net().to(device)` or `Net().cuda()`."""
    while m.matches(expression, m.Call(func=m.Attribute(attr=m.Name("to") | m.Name("cuda")))):
        expression = cast(cst.Attribute, cast(cst.Call, expression).func).value
    return expression


def self_attribute_name(expression: cst.CSTNode) -> str | None:
    """`optimizer` for `self.optimizer`."""
    if m.matches(expression, m.Attribute(value=m.Name("self"), attr=m.Name())):
        return cast(cst.Attribute, expression).attr.value
    return None


def held_object(expression: cst.BaseExpression) -> cst.BaseExpression | None:
    """The variable an expression reads from: `model` in `model.backbone`, `self.model` in
    `self.model.head` (an object kept on `self`)."""
    while isinstance(expression, cst.Attribute):
        if self_attribute_name(expression) is not None:
            return expression
        expression = expression.value
    return expression if isinstance(expression, cst.Name) else None


def opened(statements, closure) -> list:
    """A batch loop's statements with the closure it passes to `optimizer.step(closure)` opened in
    place (its body without the final `return loss`)."""
    return [
        s
        for statement in statements
        for s in (list(closure.body.body[:-1]) if statement is closure else [statement])
    ]


def is_variable(expression: cst.BaseExpression) -> bool:
    """A name or an attribute of self: what holds a value across statements."""
    return isinstance(expression, cst.Name) or self_attribute_name(expression) is not None
