"""Where converted code goes: atomic file writes and the diff preview."""

from __future__ import annotations

import difflib
import os
import stat
import tempfile
from pathlib import Path

from .source import InputError

RED, GREEN, CYAN, RESET = "\033[31m", "\033[32m", "\033[36m", "\033[0m"


def default_output(path: Path) -> Path:
    return path.with_name(f"{path.stem}_lightning{path.suffix}")


def write_atomic(path: Path, text: str, newline: str = "", encoding: str = "utf-8") -> None:
    """Writes through a temporary file in the same folder and a rename, so a failure at any
    point (including Ctrl-C) leaves either the old file or the new one, never a partial one.

    A symbolic link is written through: its target is replaced, the link stays. A rewritten file
    keeps its mode; a new one gets the mode any editor would give it (0666 less the umask), not the
    temporary file's 0600."""
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    folder = path.parent if str(path.parent) else Path(".")
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o666 & ~current_umask()
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as error:
        raise InputError(f"{path}: error: cannot write: {error.strerror}") from None
    try:
        with os.fdopen(handle, "w", encoding=encoding, newline=newline) as stream:
            stream.write(text)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException as error:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise InputError(f"{path}: error: cannot write: {error.strerror}") from None
        raise


def current_umask() -> int:
    mask = os.umask(0o022)  # the only way to read it is to set it: set it back at once
    os.umask(mask)
    return mask


def unified_diff(before: str, after: str, path: str, color: bool = False) -> str:
    name = path.lstrip("/")  # `a/home/me/train.py`, as git writes it, not `a//home/me/train.py`
    lines = difflib.unified_diff(
        before.splitlines(keepends=True),
        after.splitlines(keepends=True),
        fromfile=f"a/{name}",
        tofile=f"b/{name}",
    )
    rendered = []
    for line in lines:
        if not line.endswith("\n"):
            line += "\n\\ No newline at end of file\n"
        if color:
            prefix = line[:1]
            tint = {"+": GREEN, "-": RED, "@": CYAN}.get(prefix)
            if tint and not line.startswith(("+++", "---")):
                line = f"{tint}{line.rstrip(chr(10))}{RESET}\n"
        rendered.append(line)
    return "".join(rendered)
