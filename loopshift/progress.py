"""A folder's progress, on stderr: a rich bar on a terminal, a plain line a file when piped."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    import rich.progress

    from .jobs import FileOutcome

SAID = {"clean": "converted", "todo": "converted with TODOs", "none": "no training loop", "failed": "failed"}


class Progress:
    def __init__(self, total: int, show: bool, diff: bool = False) -> None:
        """diff: a line only for each file --diff would change, or that failed (quiet on success)."""
        self.total, self.show, self.diff, self.done = total, show, diff, 0
        self.bar: rich.progress.Progress | None = None

    def __enter__(self) -> Progress:
        if self.show and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
            )
            from rich.progress import (
                Progress as Bar,
            )

            self.bar = Bar(
                TextColumn("converting"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.description}"),
                console=Console(stderr=True),
                transient=True,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self.bar.start()
            self.task = self.bar.add_task("", total=self.total)
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None

    def echo(self, line: str, err: bool) -> None:
        self.write(line + "\n", err)

    def write(self, text: str, err: bool = False) -> None:
        """What goes to the screen meanwhile goes through rich, above the bar; stdout piped elsewhere
        gets it as it is."""
        if self.bar is not None and (err or sys.stdout.isatty()):
            from rich.text import Text

            self.bar.console.print(Text.from_ansi(text.removesuffix("\n")), soft_wrap=True, highlight=False)
        else:
            stream = sys.stderr if err else sys.stdout
            stream.write(text)
            stream.flush()

    def advance(self, done: FileOutcome) -> None:
        """One more file done (a jobs.FileOutcome)."""
        self.done += 1
        if self.bar is not None:
            self.bar.update(self.task, advance=1, description=str(done.path))
        elif self.show and not (self.diff and not done.changed and done.outcome != "failed"):
            typer.echo(f"[{self.done}/{self.total}] {done.path}: {done.note or SAID[done.outcome]}", err=True)
