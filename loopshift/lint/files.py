"""Which files a lint run reads: `*.py` and `*.ipynb` below the given folders, less excluded and
git-ignored paths."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from fnmatch import fnmatchcase
from pathlib import Path

SKIPPED_FOLDERS = {"__pycache__", "node_modules", "venv", "site-packages"}


def matches(path: Path, root: Path, patterns: Iterable[str], folders: bool = True) -> bool:
    """Whether path matches a pattern, the simple way of .gitignore and ruff's `exclude`: a
    pattern with a slash is matched against the path relative to root, one without against
    its name. With `folders`, the folders between root and path count too."""
    try:
        parts = path.resolve().relative_to(root.resolve()).parts
    except ValueError:
        parts = path.parts
    depths = range(1, len(parts) + 1) if folders else [len(parts)]
    for pattern in patterns:
        anchored = "/" in pattern.rstrip("/")
        pattern = pattern.strip("/").removeprefix("**/")
        names = ("/".join(parts[:depth]) if anchored else parts[depth - 1] for depth in depths)
        if any(fnmatchcase(name, pattern) for name in names):
            return True
    return False


def gitignore(folder: Path) -> list[str]:
    """The patterns of folder/.gitignore (negations and comments left out)."""
    try:
        lines = (folder / ".gitignore").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    return [line.strip() for line in lines if line.strip() and not line.startswith(("#", "!"))]


def python_files(path: Path, root: Path, exclude: Iterable[str]) -> Iterator[Path]:
    """path itself when it is not a folder (unless `exclude` names it, as a pre-commit hook
    needs; a missing file comes through to be reported), else every `*.py` and `*.ipynb` below
    it, in order, skipping hidden folders, `exclude` (relative to root, the project folder) and
    the .gitignore patterns of path and root."""
    exclude = tuple(exclude)
    if not path.is_dir():
        if not matches(path, root, exclude):
            yield path
        return
    ignores = [(root, exclude), *((folder, gitignore(folder)) for folder in dict.fromkeys([path, root]))]

    def skipped(entry: Path) -> bool:
        # the entry alone: folders above it were checked as the walk went in, and those above
        # the folder the user named are theirs to choose
        return any(matches(entry, base, patterns, folders=False) for base, patterns in ignores)

    for folder, folders, names in os.walk(path):
        here = Path(folder)
        folders[:] = sorted(
            name
            for name in folders
            if not name.startswith(".") and name not in SKIPPED_FOLDERS and not skipped(here / name)
        )
        yield from (
            here / name
            for name in sorted(names)
            if name.endswith((".py", ".ipynb")) and not skipped(here / name)
        )
