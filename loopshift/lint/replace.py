"""Applies node replacements to a tree (its own module: subclassing a libcst visitor loads libcst,
which a lint run that fixes nothing never needs)."""

from __future__ import annotations

import libcst as cst


class ReplaceNodes(cst.CSTTransformer):
    """Swaps nodes of the original tree by identity. A replacement inside another one is
    dropped in this pass; the next pass finds it again."""

    def __init__(self, replacements: dict[int, cst.CSTNode]) -> None:
        self.replacements = replacements

    def on_visit(self, node: cst.CSTNode) -> bool:
        return id(node) not in self.replacements

    def on_leave(self, original: cst.CSTNode, updated: cst.CSTNode):
        return self.replacements.get(id(original), updated)
