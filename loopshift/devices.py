"""Device plumbing that Lightning owns: `.to(device)`, `.cuda()` and the `device` variables."""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol, cast

import libcst as cst
import libcst.matchers as m

from .index import CodeIndex
from .torch_names import DEVICE_STRINGS


class MoveOracle(Protocol):
    """What DropDeviceMoves asks: a DeviceOracle, or an answer chosen ahead (fabric.edits.SelectedMoves)."""

    def is_move(self, call: cst.Call) -> bool: ...


class DeviceOracle:
    """Answers whether an expression denotes a device, following names to their values."""

    def __init__(self, index: CodeIndex, resolve, ranks: Collection[cst.Param] = ()) -> None:
        self.index = index
        self.resolve = resolve  # Name -> Assignment | None, following parameters to call sites
        self.ranks = ranks  # the rank a spawned worker gets: `.to(rank)` moves to its GPU

    def is_device(self, expression: cst.BaseExpression, depth: int = 0) -> bool:
        if depth > 6:
            return False
        if isinstance(expression, cst.SimpleString):  # b"cpu" is bytes, no device
            text = expression.evaluated_value
            return isinstance(text, str) and text.split(":")[0] in DEVICE_STRINGS
        if isinstance(expression, cst.IfExp):
            return self.is_device(expression.body, depth + 1) and self.is_device(expression.orelse, depth + 1)
        if isinstance(expression, cst.Attribute):
            return expression.attr.value == "device"
        if isinstance(expression, cst.Call):
            return "torch.device" in self.index.called_name(expression)
        if isinstance(expression, cst.Name):
            assignment = self.resolve(expression)
            if assignment is not None and any(assignment.node is rank for rank in self.ranks):
                return True
            if assignment is None or isinstance(assignment.node, cst.Param):
                return expression.value.lower() == "device"
            value = self.index.assigned_value(assignment)
            return value is not None and self.is_device(value, depth + 1)
        return False

    def is_move(self, call: cst.Call) -> bool:
        """`x.to(device)`, `x.to(device, non_blocking=True)`, `x.to(device=device)`, `x.cuda()`."""
        if not isinstance(call.func, cst.Attribute):
            return False
        method = call.func.attr.value
        keywords = {a.keyword.value for a in call.args if a.keyword is not None}
        positional = [a.value for a in call.args if a.keyword is None and not a.star]
        if method == "cuda":
            return not positional and keywords <= {"non_blocking"}
        if method != "to" or keywords - {"non_blocking", "device"}:
            return False
        if "device" in keywords:
            return not positional and self.is_device(
                next(a.value for a in call.args if a.keyword and a.keyword.value == "device")
            )
        return len(positional) == 1 and self.is_device(positional[0])


# {k: v for k, v in d.items()}
IDENTITY = m.DictComp(
    key=m.Name(),
    value=m.Name(),
    for_in=m.CompFor(
        target=m.Tuple(elements=[m.Element(m.Name()), m.Element(m.Name())]),
        iter=m.Call(func=m.Attribute(attr=m.Name("items")), args=[]),
        ifs=[],
        inner_for_in=None,
    ),
)

# (t for t in batch), [t for t in batch]
_COPY_FOR = m.CompFor(target=m.Name(), ifs=[], inner_for_in=None, asynchronous=None)
COPY = m.GeneratorExp(elt=m.Name(), for_in=_COPY_FOR) | m.ListComp(elt=m.Name(), for_in=_COPY_FOR)


class DropDeviceMoves(cst.CSTTransformer):
    """Removes device moves from moved code; `x, y = x, y` left behind disappears too.
    With `moved_by_lightning` (the hook's batch and what the code derives from it), only moves
    of those go: Lightning moved the batch; anything else the hook makes or loads (a sample
    from the prior, a global tensor) moves to the module's device, `.to(self.device)`."""

    def __init__(self, oracle: MoveOracle, moved_by_lightning: set[str] | None = None) -> None:
        self.oracle = oracle
        self.moved_by_lightning = moved_by_lightning

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        if not self.oracle.is_move(original):
            return updated
        receiver = cast(cst.Attribute, updated.func).value  # a move is `receiver.to(...)` or `.cuda()`
        if self.moved_by_lightning is not None and not any(
            cast(cst.Name, name).value in self.moved_by_lightning
            for name in m.findall(cast(cst.Attribute, original.func).value, m.Name())
        ):
            device = cst.Arg(cst.Attribute(cst.Name("self"), cst.Name("device")))
            return updated.with_changes(func=cst.Attribute(receiver, cst.Name("to")), args=[device])
        return receiver.with_changes(lpar=updated.lpar, rpar=updated.rpar) if updated.lpar else receiver

    def leave_DictComp(self, original: cst.DictComp, updated: cst.DictComp) -> cst.BaseExpression:
        # {k: v for k, v in batch.items()} is a copy of batch once the moves are gone
        if m.matches(updated, IDENTITY):  # (the matcher checked the node types cast to)
            key, value = cast(cst.Name, updated.key), cast(cst.Name, updated.value)
            target = [cast(cst.Name, e.value) for e in cast(cst.Tuple, updated.for_in.target).elements]
            if key.value == target[0].value and value.value == target[1].value and original is not updated:
                return cast(cst.Attribute, cast(cst.Call, updated.for_in.iter).func).value
        return updated

    def leave_Assign(self, original: cst.Assign, updated: cst.Assign) -> cst.Assign:
        # `x, y = (t for t in batch)` unpacks what `x, y = batch` does once the moves are gone
        value = updated.value
        if (
            original.value is not value
            and len(updated.targets) == 1
            and isinstance(updated.targets[0].target, (cst.Tuple, cst.List))
            and m.matches(value, COPY)
        ):
            copy = cast(cst.GeneratorExp | cst.ListComp, value)
            if cast(cst.Name, copy.elt).value == cast(cst.Name, copy.for_in.target).value:
                return updated.with_changes(value=copy.for_in.iter)
        return updated

    def leave_SimpleStatementLine(self, original, updated):
        if original is not updated and all(is_self_assignment(s) or is_bare_name(s) for s in updated.body):
            return cst.RemovalSentinel.REMOVE
        return updated


def is_bare_name(statement: cst.BaseSmallStatement) -> bool:
    """`model`: what `model.to(device)` as a statement of its own becomes."""
    return isinstance(statement, cst.Expr) and isinstance(statement.value, cst.Name)


def is_self_assignment(statement: cst.BaseSmallStatement) -> bool:
    """`x = x` or `a, b = a, b`: what a line of device moves becomes."""
    if not (isinstance(statement, cst.Assign) and len(statement.targets) == 1):
        return False
    target, value = statement.targets[0].target, statement.value
    if isinstance(target, cst.Name) and isinstance(value, cst.Name):
        return target.value == value.value
    if (
        isinstance(target, cst.Tuple)
        and isinstance(value, cst.Tuple)
        and len(target.elements) == len(value.elements)
    ):
        return all(
            isinstance(t.value, cst.Name) and isinstance(v.value, cst.Name) and t.value.value == v.value.value
            for t, v in zip(target.elements, value.elements)
        )
    return False
