"""Jupyter notebooks: their code cells joined into one module, converted or linted as one, split back.

Each code cell enters the module after a marker comment naming it, so that the converted module
can be cut back into cells. IPython syntax (`%magic`, `!shell`, `obj?`) stands in the module as a
string statement, which parses, means nothing to the analysis and maps back exactly; a `%%magic`
cell is not Python at all and stays out of the module, untouched.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import json
import re
import warnings
from itertools import count
from pathlib import Path
from typing import TypeVar

import nbformat

from .diagnostics import Diagnostic, Span
from .output import unified_diff
from .source import InputError, parse_module, read_source

D = TypeVar("D", bound=Diagnostic)  # a Diagnostic, or lint's Finding: in_cell keeps the class

ESCAPED = re.compile(r"(?P<kept>[ \t]*)(?P<magic>[%!?].*)")  # %magic, !shell, ?help at a statement's start
ASSIGNED = re.compile(r"(?P<kept>[ \t]*[\w.]+[ \t]*=[ \t]*)(?P<magic>[%!].*)")  # files = !ls
HELP = re.compile(r"(?P<kept>[ \t]*)(?P<magic>[\w.]+\?\??[ \t]*)")  # obj? and obj??


def read_notebook(path: Path) -> nbformat.NotebookNode:
    """A notebook in format 4; InputError with a one-line message for what is not one."""
    text = read_source(path)
    try:
        notebook = nbformat.reads(text, as_version=4)
        nbformat.validate(notebook)
    except nbformat.reader.NotJSONError:
        raise InputError(json_error(path, text)) from None
    except Exception as error:  # nbformat has no one error type for JSON that is not a notebook
        reason = str(error).strip().splitlines()[0] if isinstance(error, nbformat.ValidationError) else ""
        raise InputError(f"{path}: error: not a Jupyter notebook{f' ({reason})' if reason else ''}") from None
    return notebook


def json_error(path: Path, text: str) -> str:
    """Where the JSON goes wrong: nbformat's own error does not say."""
    try:
        json.loads(text)
    except json.JSONDecodeError as error:
        return f"{path}:{error.lineno}:{error.colno}: error: not valid JSON: {error.msg}"
    return f"{path}: error: not valid JSON"


def notebook_text(notebook: nbformat.NotebookNode) -> str:
    """The file's text, as nbformat.write writes it."""
    return nbformat.writes(notebook).rstrip("\n") + "\n"


def is_cell_magic(source: str) -> bool:
    return source.lstrip().startswith("%%")


def parses(code: str) -> bool:
    try:
        with warnings.catch_warnings():  # an invalid escape in the user's string is theirs to hear about
            warnings.simplefilter("ignore")
            ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    return True


def trimmed(code: str) -> str:
    """Without the blank lines a cell starts or ends with: the converter spaces code as a file."""
    lines = code.split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines)


class NotebookCode:
    """The code cells of a notebook as one Python module (`code`), and the way back to cells.
    The module runs as a script too: its IPython lines are inert strings there."""

    def __init__(self, notebook: nbformat.NotebookNode, path: str = "<notebook>") -> None:
        self.notebook, self.path = notebook, path
        # a word that occurs nowhere in the notebook cannot collide with the user's code
        text = "\n".join(cell.source for cell in notebook.cells)
        self.tag = next(tag for tag in (f"loopshift{n or ''}" for n in count()) if tag not in text)
        self.marker = re.compile(rf"# {self.tag} cell (\d+)")
        self.magics: dict[str, str] = {}  # placeholder string literal -> the IPython text it stands for
        self.sources = python_cells(notebook)
        self.starts: list[tuple[int, int]] = []  # (line of its marker in `code`, cell index)
        chunks, line = [], 1
        for index, source in self.sources.items():
            chunk = f"# {self.tag} cell {index}\n{self.hide_magics(index, source)}\n"
            self.starts.append((line, index))
            chunks.append(chunk)
            line += chunk.count("\n")
        self.code = "".join(chunks)

    # -- IPython syntax -------------------------------------------------------------------
    def hide_magics(self, index: int, source: str) -> str:
        """The cell with each IPython line (and its `\\` continuation lines) made a placeholder
        string. A cell that parses as it is has none: a `%` line there is inside a string."""
        if parses(source):
            return source
        lines, kept = source.split("\n"), []
        while lines:
            line = lines.pop(0)
            found = ASSIGNED.fullmatch(line) or ESCAPED.fullmatch(line) or HELP.fullmatch(line)
            if found:
                magic = found["magic"]
                while magic.endswith("\\") and lines:
                    magic += "\n" + lines.pop(0)
                placeholder = f'"{self.tag} magic {len(self.magics)}"'
                self.magics[placeholder] = magic
                line = found["kept"] + placeholder
            kept.append(line)
        hidden = "\n".join(kept)
        if not parses(hidden):
            parse_module(
                hidden, f"{self.path}:cell {index + 1}"
            )  # raises InputError naming the cell and line
        return hidden

    def restore_magics(self, code: str) -> str:
        for placeholder, magic in self.magics.items():
            code = code.replace(placeholder, magic)
        return code

    # -- diagnostics ------------------------------------------------------------------------
    def in_cell(self, diagnostic: D) -> D:
        """A diagnostic on a line of `code`, placed in its cell: `cell 3`, line 2 of it."""
        span = diagnostic.span
        starts = [(line, index) for line, index in self.starts if line < span.line]
        if not starts:
            return diagnostic
        line, index = starts[-1]
        return dataclasses.replace(
            diagnostic,
            cell=index + 1,
            span=Span(span.line - line, span.column, span.end_line - line, span.end_column),
        )

    # -- back to cells ----------------------------------------------------------------------
    def split(self, code: str) -> dict[int, str]:
        """Cell index -> its part of `code`, a conversion of `self.code` (magics still hidden).

        A marker is a boundary only at the margin, in cell order, where it does not cut a
        statement in two; one that moved with its statement into a block or up the file is
        dropped. A cell whose marker is gone (with the statement it preceded) keeps nothing:
        what is left of its code stays with the cell before, so no code changes its order.
        """
        head: list[str] = []
        pieces: list[tuple[int, list[str]]] = []
        for line in code.split("\n"):
            found = self.marker.fullmatch(line.lstrip())
            if not found:
                (pieces[-1][1] if pieces else head).append(line)
            elif line == found[0] and (not pieces or int(found[1]) > pieces[-1][0]):
                pieces.append((int(found[1]), []))
        if not pieces:
            return {next(iter(self.sources)): "\n".join(head)} if self.sources else {}
        pieces[0][1][:0] = head  # what a conversion put above the first marker
        return statements_whole([(index, "\n".join(lines)) for index, lines in pieces])

    def changes(self, code: str) -> dict[int, str]:
        """Cell index -> new source of each cell that `code` changes ("" for one it empties)."""
        parts = self.split(code)
        changed = {}
        for index, source in self.sources.items():
            new = trimmed(self.restore_magics(parts.get(index, "")))
            if new != trimmed(source):
                changed[index] = new
        return changed

    def rebuild(self, code: str) -> nbformat.NotebookNode:
        """The notebook with the code cells of `code`: a changed cell loses its outputs, one left
        empty goes; markdown, raw and `%%magic` cells stay as they were."""
        changed = self.changes(code)
        notebook = copy.deepcopy(self.notebook)
        cells = []
        for index, cell in enumerate(notebook.cells):
            if index in changed:
                if not changed[index]:
                    continue
                cell.source, cell.outputs, cell.execution_count = changed[index], [], None
            cells.append(cell)
        notebook.cells = cells
        return notebook

    def diff(self, code: str, color: bool = False) -> str:
        """A unified diff per changed cell, named `path:cell N` as ruff names them."""
        return "".join(
            unified_diff(
                self.notebook.cells[index].source + "\n",
                new and new + "\n",
                f"{self.path}:cell {index + 1}",
                color=color,
            )
            for index, new in self.changes(code).items()
        )


def python_cells(notebook: nbformat.NotebookNode) -> dict[int, str]:
    """Cell index -> source of the cells that hold Python (none in a notebook of another language)."""
    metadata = notebook.metadata
    language = metadata.get("kernelspec", {}).get("language") or metadata.get("language_info", {}).get("name")
    if (language or "python").lower() != "python":
        return {}
    return {
        index: cell.source.replace("\r\n", "\n")
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code" and not is_cell_magic(cell.source)
    }


def statements_whole(pieces: list[tuple[int, str]]) -> dict[int, str]:
    """The pieces, each that does not parse on its own joined with the ones after it (the last
    with the ones before it): the code of a cell is whole statements."""
    cells: list[tuple[int, str]] = []
    for index, text in pieces:
        if cells and not parses(cells[-1][1]):
            cells[-1] = (cells[-1][0], cells[-1][1] + "\n" + text)
        else:
            cells.append((index, text))
    while len(cells) > 1 and not parses(cells[-1][1]):
        _, text = cells.pop()
        cells[-1] = (cells[-1][0], cells[-1][1] + "\n" + text)
    return dict(cells)
