"""`[tool.loopshift]` from the nearest pyproject.toml: select, ignore, exclude, per-file-ignores, target."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    try:
        import tomli as tomllib
    except ModuleNotFoundError:
        tomllib = None

from ..source import InputError
from ..targets import TARGETS
from .engine import check_selectors
from .files import matches


@dataclass(frozen=True)
class Settings:
    root: Path  # the project folder: patterns are relative to it
    select: tuple[str, ...] | None = None
    ignore: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    per_file_ignores: dict[str, tuple[str, ...]] = field(default_factory=dict)
    target: str = "lightning"

    def ignored_for(self, path: Path) -> list[str]:
        """The codes per-file-ignores turns off for path."""
        return [
            code
            for pattern, codes in self.per_file_ignores.items()
            if matches(path, self.root, [pattern])
            for code in codes
        ]


def find_pyproject(path: Path) -> Path | None:
    folder = path.resolve()
    folder = folder if folder.is_dir() else folder.parent
    return next(
        (f / "pyproject.toml" for f in (folder, *folder.parents) if (f / "pyproject.toml").is_file()), None
    )


def settings_for(path: Path) -> Settings:
    """The settings of the project path belongs to. Raises InputError on a bad pyproject.toml."""
    pyproject = find_pyproject(path)
    return load(pyproject) if pyproject is not None else Settings(root=Path.cwd())


@cache
def load(pyproject: Path) -> Settings:
    if tomllib is None:
        return Settings(root=pyproject.parent)
    try:
        table = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("tool", {}).get("loopshift", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise InputError(f"{pyproject}: error: cannot read [tool.loopshift]: {error}") from None

    def strings(key: str, value: object = None) -> tuple[str, ...]:
        value = table.get(key, []) if value is None else value
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise InputError(f"{pyproject}: error: [tool.loopshift] {key} must be a list of strings")
        return tuple(value)

    per_file = table.get("per-file-ignores", {})
    if not isinstance(per_file, dict):
        raise InputError(f"{pyproject}: error: [tool.loopshift] per-file-ignores must be a table")
    settings = Settings(
        root=pyproject.parent,
        select=strings("select") if "select" in table else None,
        ignore=strings("ignore"),
        exclude=strings("exclude"),
        per_file_ignores={
            pattern: strings(f"per-file-ignores.{pattern}", codes) for pattern, codes in per_file.items()
        },
        target=str(table.get("target", "lightning")),
    )
    check_selectors(
        settings.select,
        settings.ignore,
        *settings.per_file_ignores.values(),
        where=f"{pyproject}: error: [tool.loopshift]",
    )
    if settings.target not in TARGETS:
        raise InputError(f"{pyproject}: error: [tool.loopshift] target must be one of {', '.join(TARGETS)}")
    return settings
