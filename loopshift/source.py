"""Reading and parsing input files, with one-line errors that name the file and line."""
from __future__ import annotations

import tokenize
from pathlib import Path

import libcst as cst


class InputError(Exception):
    """Bad input: the message is one line, `path[:line[:col]]: error: reason`."""


def read_source(path: Path) -> str:
    """Reads a Python file honouring its encoding cookie and BOM, keeping its line endings."""
    if not path.exists():
        raise InputError(f"{path}: error: no such file")
    if path.is_dir():
        raise InputError(f"{path}: error: is a directory, expected a Python file")
    try:
        with open(path, "rb") as raw:
            encoding, _ = tokenize.detect_encoding(raw.readline)
            raw.seek(0)
            data = raw.read()
    except (OSError, SyntaxError) as error:
        raise InputError(f"{path}: error: cannot read: {error}") from None
    try:
        return data.decode("utf-8-sig" if encoding == "utf-8-sig" else encoding)
    except (UnicodeDecodeError, LookupError) as error:
        line = data[: getattr(error, "start", 0)].count(b"\n") + 1
        raise InputError(f"{path}:{line}: error: not valid {encoding} text ({error.reason})") from None


def parse_module(source: str, path: str = "<string>") -> cst.Module:
    try:
        return cst.parse_module(source)
    except cst.ParserSyntaxError as error:
        message = str(error.message).splitlines()[0] if error.message else "invalid syntax"
        raise InputError(f"{path}:{error.raw_line}:{error.raw_column + 1}: error: syntax error: {message}") from None
