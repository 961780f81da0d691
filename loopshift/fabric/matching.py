"""Small matchers over expressions shared by the Fabric analysis."""

from __future__ import annotations

from typing import cast

import libcst as cst
import libcst.matchers as m

from ..devices import DeviceOracle

# `if __name__ == "__main__":`, which every process runs: no condition of the code under it
MAIN_GUARD = m.If(
    test=m.Comparison(
        left=m.Name("__name__"),
        comparisons=[
            m.ComparisonTarget(
                operator=m.Equal(), comparator=m.SimpleString('"__main__"') | m.SimpleString("'__main__'")
            )
        ],
    )
)


def keyword(call: cst.Call, name: str) -> cst.BaseExpression | None:
    return next((a.value for a in call.args if a.keyword is not None and a.keyword.value == name), None)


def strip_moves(oracle: DeviceOracle, expression: cst.BaseExpression) -> cst.BaseExpression:
    """`x` for `x.to(device).cuda()`."""
    while isinstance(expression, cst.Call) and oracle.is_move(expression):
        expression = cast(cst.Attribute, expression.func).value
    return expression


def in_move_chain(oracle: DeviceOracle, expression: cst.BaseExpression, call: cst.Call) -> bool:
    """Whether call is one of the device moves an expression ends with."""
    while isinstance(expression, cst.Call) and oracle.is_move(expression):
        if expression is call:
            return True
        expression = cast(cst.Attribute, expression.func).value
    return False


def comprehension_source(comprehension: cst.CompFor) -> cst.BaseExpression:
    """`batch` for `for k, v in batch.items()`."""
    source = comprehension.iter
    if m.matches(source, m.Call(func=m.Attribute(attr=m.Name("items") | m.Name("values")), args=[])):
        return cast(cst.Attribute, cast(cst.Call, source).func).value
    return source
