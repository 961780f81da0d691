"""CodeIndex look-ups on nodes at the edges of the tree."""

import libcst as cst
import pytest

from loopshift.index import CodeIndex


def test_statement_of_a_node_inside_a_statement_is_that_statement() -> None:
    index = CodeIndex(cst.parse_module("x = 1\nif x:\n    y = x + 1\n"))
    branch = index.module.body[1]
    assert isinstance(branch, cst.If)
    [plus] = index.findall(cst.matchers.BinaryOperation(), cst.BinaryOperation)
    assert index.statement_of(plus) is branch.body.body[0]
    assert index.statement_of(branch.test) is branch


def test_statement_of_a_node_no_statement_holds_is_an_error_not_a_hang() -> None:
    """The walk up the parents stopped at a statement only: from the module (or its header) it
    went on asking the parent of None for ever."""
    index = CodeIndex(cst.parse_module("# header\n\nx = 1\n"))
    with pytest.raises(ValueError, match="no statement holds Module"):
        index.statement_of(index.module)
    with pytest.raises(ValueError, match="no statement holds EmptyLine"):
        index.statement_of(index.module.header[0])
