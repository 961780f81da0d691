"""Fabric's lines, and one pass over the module that puts them in.

Edits are found on the original tree and applied by identity: calls replaced (`loss.backward()`
-> `fabric.backward(loss)`), statements inserted after their anchors (`fabric.setup(...)`) or
removed (`scaler.update()`), device moves dropped. A block left empty gets `pass`; an `if` left
empty (`if args.cuda: model.cuda()`) goes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import libcst as cst
import libcst.matchers as m

from ..core import TODO
from ..devices import IDENTITY, DropDeviceMoves, is_bare_name, is_self_assignment


@dataclass
class Edits:
    calls: dict[int, Callable[[cst.Call], cst.BaseExpression]] = field(
        default_factory=dict
    )  # call -> its rewrite
    autocasts: dict[int, cst.BaseExpression] = field(default_factory=dict)  # with-item -> `fabric.autocast()`
    moves: set[int] = field(default_factory=set)  # device moves to drop
    removed: set[int] = field(default_factory=set)  # statements that go
    before: dict[int, list[cst.BaseStatement]] = field(default_factory=dict)
    after: dict[int, list[cst.BaseStatement]] = field(default_factory=dict)
    todo: dict[int, str] = field(default_factory=dict)  # statement -> reason (code)
    parameters: dict[int, int] = field(
        default_factory=dict
    )  # function -> where `fabric` joins its parameters
    keep_on_self: dict[int, cst.BaseStatement] = field(
        default_factory=dict
    )  # __init__ -> `self.fabric = fabric`
    passes_fabric: dict[int, cst.BaseExpression] = field(
        default_factory=dict
    )  # call -> fabric, as its first argument
    module: set[int] = field(default_factory=set)  # set-up model references that need `.module`


class SelectedMoves:
    """The DeviceOracle answer for DropDeviceMoves: only the moves Fabric makes redundant."""

    def __init__(self, moves: set[int]) -> None:
        self.moves = moves

    def is_move(self, call: cst.Call) -> bool:
        return id(call) in self.moves


class ApplyFabricEdits(DropDeviceMoves):
    def __init__(self, edits: Edits) -> None:
        super().__init__(SelectedMoves(edits.moves))
        self.edits = edits
        self.vanished: set[int] = set()  # statements left with nothing to do
        self.emptied: set[int] = set()  # blocks left with nothing in them
        self.edited: set[int] | None = None  # with around: nodes visited all through, as always
        self.around: set[int] = set()  # the edited nodes and their ancestors: the rest stays as it is
        self.inside = 0  # how deep in an edited node's subtree the visit is

    def only_around_edits(self, index) -> ApplyFabricEdits:
        """Visits only the nodes the edits name, all through, and their ancestors (not the whole
        module); also, as a visit of everything would, the statements and comprehensions that change
        on any visit: `x = x` and bare names go, `{k: v for k, v in d.items()}` is `d`."""
        edits = self.edits
        edited = {
            *edits.calls,
            *edits.autocasts,
            *edits.moves,
            *edits.removed,
            *edits.before,
            *edits.after,
            *edits.todo,
            *edits.parameters,
            *edits.keep_on_self,
            *edits.passes_fabric,
            *edits.module,
        }
        for statement in index.nodes(cst.SimpleStatementLine):
            body = statement.body
            if all(is_self_assignment(s) or is_bare_name(s) for s in body) or (
                len(body) == 1
                and isinstance(body[0], cst.Expr)
                and isinstance(body[0].value, (cst.Name, cst.Attribute))
            ):
                edited.add(id(statement))
        edited |= {id(node) for node in index.nodes(cst.DictComp) if m.matches(node, IDENTITY)}
        self.edited, self.around = edited, index.around(edited)
        return self

    def on_visit(self, node: cst.CSTNode) -> bool:
        if self.edited is None:
            return super().on_visit(node)
        if id(node) in self.edited:
            self.inside += 1
        return super().on_visit(node) and (self.inside > 0 or id(node) in self.around)

    def on_leave(self, original, updated):
        if self.edited is not None and id(original) in self.edited:
            self.inside -= 1
        return super().on_leave(original, updated)

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        result = super().leave_Call(original, updated)
        if not isinstance(result, cst.Call):
            return result  # a device move, gone
        if id(original) in self.edits.passes_fabric:  # train(args, ...) -> train(fabric, args, ...)
            result = result.with_changes(args=[cst.Arg(self.edits.passes_fabric[id(original)]), *result.args])
        rewrite = self.edits.calls.get(id(original))
        return rewrite(result) if rewrite is not None else result

    def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.BaseExpression:
        return cst.Attribute(updated, cst.Name("module")) if id(original) in self.edits.module else updated

    def leave_Attribute(self, original: cst.Attribute, updated: cst.Attribute) -> cst.BaseExpression:
        return cst.Attribute(updated, cst.Name("module")) if id(original) in self.edits.module else updated

    def leave_WithItem(self, original: cst.WithItem, updated: cst.WithItem) -> cst.WithItem:
        fabric = self.edits.autocasts.get(id(original))
        return (
            updated.with_changes(item=cst.Call(cst.Attribute(fabric, cst.Name("autocast"))))
            if fabric is not None
            else updated
        )

    def leave_SimpleStatementLine(self, original, updated):
        result = super().leave_SimpleStatementLine(original, updated)
        bare = (
            len(updated.body) == 1
            and isinstance(updated.body[0], cst.Expr)
            and isinstance(updated.body[0].value, (cst.Name, cst.Attribute))
        )
        if isinstance(result, cst.RemovalSentinel) or (original is not updated and bare):
            self.vanished.add(id(original))  # `x = x` or a bare `model` once its moves are gone
        return updated

    def leave_If(self, original: cst.If, updated: cst.If) -> cst.If:
        if id(original.body) in self.emptied and original.orelse is None:
            self.vanished.add(id(original))
        return updated

    def leave_FunctionDef(self, original: cst.FunctionDef, updated: cst.FunctionDef) -> cst.FunctionDef:
        position = self.edits.parameters.get(id(original))
        if position is None:
            return updated
        params = updated.params
        fabric = cst.Param(cst.Name("fabric"), comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
        if params.posonly_params:
            params = params.with_changes(posonly_params=insert(list(params.posonly_params), position, fabric))
        else:
            listed = list(params.params)
            if position == len(listed) and not (
                isinstance(params.star_arg, cst.Param | cst.ParamStar)
                or params.kwonly_params
                or params.star_kwarg
            ):
                fabric = fabric.with_changes(comma=cst.MaybeSentinel.DEFAULT)
            params = params.with_changes(params=insert(listed, position, fabric))
        updated = updated.with_changes(params=params)
        keep = self.edits.keep_on_self.get(id(original))
        if keep is not None:
            body = list(updated.body.body)
            start = 0
            while start < len(body) and is_preamble(body[start]):
                start += 1
            updated = updated.with_changes(
                body=updated.body.with_changes(body=body[:start] + [keep] + body[start:])
            )
        return updated

    # -- blocks: statements removed, inserted, annotated ----------------------------------
    def rebuild(self, original_body, updated_body) -> list[cst.BaseStatement]:
        body: list[cst.BaseStatement] = []
        blanks: list[cst.EmptyLine] = []  # the blank lines of removed statements, for the next one
        for original, updated in zip(original_body, updated_body):
            inserted = self.edits.before.get(id(original), [])
            if inserted:
                lines = list(updated.leading_lines)
                split = next((i for i, line in enumerate(lines) if line.comment is not None), len(lines))
                body += [inserted[0].with_changes(leading_lines=lines[:split]), *inserted[1:]]
                updated = updated.with_changes(leading_lines=lines[split:])
            if id(original) in self.edits.removed or id(original) in self.vanished:
                blanks = blanks or [line for line in updated.leading_lines if line.comment is None][:2]
                body += self.edits.after.get(id(original), [])
                blanks = blanks if body else [EMPTY_BLOCK_START]
            else:
                if blanks == [EMPTY_BLOCK_START]:  # what opened the block is gone: no blank line opens it
                    updated = without_leading_blanks(updated)
                elif blanks and not updated.leading_lines:
                    updated = updated.with_changes(leading_lines=blanks)
                blanks = []
                if id(original) in self.edits.todo:
                    updated = with_todo(updated, self.edits.todo[id(original)])
                body.append(updated)
                body += self.edits.after.get(id(original), [])
        return body

    def leave_IndentedBlock(self, original, updated):
        body = self.rebuild(original.body, updated.body)
        if not body:
            self.emptied.add(id(original))
            body = [cst.SimpleStatementLine([cst.Pass()])]
        return updated.with_changes(body=body)

    def leave_Module(self, original, updated):
        return updated.with_changes(body=self.rebuild(original.body, updated.body))


EMPTY_BLOCK_START = cst.EmptyLine()
Statement = cst.SimpleStatementLine | cst.BaseCompoundStatement  # a statement with leading_lines


def without_leading_blanks(statement: Statement) -> Statement:
    lines = list(statement.leading_lines)
    while lines and lines[0].comment is None:
        lines.pop(0)
    return statement.with_changes(leading_lines=lines)


def with_todo(statement: Statement, reason: str) -> Statement:
    """`# TODO(loopshift): reason` above the statement, once."""
    comment = TODO + reason
    if any(line.comment is not None and line.comment.value == comment for line in statement.leading_lines):
        return statement
    return statement.with_changes(
        leading_lines=[*statement.leading_lines, cst.EmptyLine(comment=cst.Comment(comment))]
    )


def insert(items: list, position: int, item) -> list:
    return items[:position] + [item] + items[position:]


def is_preamble(statement: cst.CSTNode) -> bool:
    """A docstring or `super().__init__(...)`: `self.fabric = fabric` goes after them."""
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return False
    small = statement.body[0]
    if isinstance(small, cst.Expr) and isinstance(small.value, (cst.SimpleString, cst.ConcatenatedString)):
        return True
    return (
        isinstance(small, cst.Expr)
        and isinstance(small.value, cst.Call)
        and isinstance(small.value.func, cst.Attribute)
        and small.value.func.attr.value == "__init__"
    )
