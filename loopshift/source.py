"""Reading and parsing input files, with one-line errors that name the file and line."""

from __future__ import annotations

import re
import tokenize
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import libcst as cst


# `x.backward(` (spaces and line breaks allowed around the dot): a module without one holds no
# manual training loop, and skips the analysis, whose scope metadata is most of a conversion's time
BACKWARD_CALL = re.compile(r"\.\s*backward\s*\(")


def calls_backward(source: str) -> bool:
    return BACKWARD_CALL.search(source) is not None


class InputError(Exception):
    """Bad input: the message is one line, `path[:line[:col]]: error: reason`."""


def read_source(path: Path) -> str:
    """Reads a Python file honouring its encoding cookie and BOM, keeping its line endings."""
    if not path.exists():
        raise InputError(f"{path}: error: no such file")
    if path.is_dir():
        raise InputError(f"{path}: error: is a directory, expected a Python file")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InputError(f"{path}: error: cannot read: {error.strerror}") from None
    try:
        encoding, _ = tokenize.detect_encoding(iter(data.splitlines(keepends=True)).__next__)
    except SyntaxError as error:
        if "encoding" in str(error) and "unknown" in str(error):
            raise InputError(f"{path}:1: error: {error.args[0]}") from None
        encoding = "utf-8"  # bytes that are not UTF-8: the decode below says where
    try:
        return data.decode("utf-8-sig" if encoding == "utf-8-sig" else encoding)
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise InputError(f"{path}:{line}: error: not valid {encoding} text ({error.reason})") from None
    except LookupError:  # a codec that is no text encoding (`# coding: hex`, rot13): bytes.decode refuses it
        raise InputError(f"{path}:1: error: not a text encoding: {encoding}") from None


def source_encoding(path: Path) -> str:
    """The encoding to write a file back in: its cookie's, with its BOM if it had one."""
    try:
        with open(path, "rb") as raw:
            return tokenize.detect_encoding(raw.readline)[0]
    except (OSError, SyntaxError):
        return "utf-8"


def parse_module(source: str, path: str = "<string>") -> cst.Module:
    import libcst as cst  # here, not above: reading files and InputError need no parser

    try:
        return cst.parse_module(source)
    except cst.ParserSyntaxError as error:
        line, column, message = error.raw_line, error.raw_column + 1, "invalid syntax"
        try:  # CPython's parser names the place and the reason more precisely
            compile(source, path, "exec", dont_inherit=True)
        except SyntaxError as python_error:
            line, column, message = (
                python_error.lineno or line,
                python_error.offset or column,
                python_error.msg,
            )
        except ValueError:
            pass
        raise InputError(f"{path}:{line}:{column}: error: syntax error: {message}") from None


def check_parses(module: cst.Module, original: cst.Module, path: str = "<string>") -> None:
    """What `parse_module(module.code, path)` checks of a rewritten module (that its code parses),
    parsing only its top-level statements that are not the original's own (which parsed): the
    whole code again, for the same error, when they do not parse."""
    kept = {id(statement) for statement in original.body}
    changed = [statement for statement in module.body if id(statement) not in kept]
    if not same(module.header, original.header) or not same(module.footer, original.footer):
        changed = list(module.body)
    try:
        parse_module("".join(module.code_for_node(statement) for statement in changed), path)
    except InputError:
        parse_module(module.code, path)


def same(nodes: Sequence[object], others: Sequence[object]) -> bool:
    return len(nodes) == len(others) and all(node is other for node, other in zip(nodes, others))
