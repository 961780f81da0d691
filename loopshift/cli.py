"""The command line: a thin layer over the library API."""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import replace
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from .lint.command import explain_command, lint_command, rules_command
from .source import InputError
from .targets import TARGETS
from .verify.command import verify_command

if TYPE_CHECKING:  # convert's modules load when it runs: `loopshift lint` is a pre-commit hook
    from .jobs import ConvertJob


class Command(TyperCommand):
    """Usage lines as click writes them (`convert [OPTIONS] PATHS...`), and flags without a `<bool>`."""

    def collect_usage_pieces(self, ctx) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                name = (param.metavar or param.name or "").upper()
                pieces.append((name if param.required else f"[{name}]") + ("..." if param.nargs != 1 else ""))
        return pieces

    def get_params(self, ctx) -> list:
        return without_bool(super().get_params(ctx))


class Group(TyperGroup):
    def get_params(self, ctx) -> list:
        return without_bool(super().get_params(ctx))


def without_bool(params: list) -> list:
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""  # a flag takes no value: nothing to show in the type column
    return params


app = typer.Typer(
    cls=Group,
    add_completion=False,
    no_args_is_help=True,
    help="Convert hand-written PyTorch training loops to PyTorch Lightning.",
)


Target = Enum("Target", {name: name for name in TARGETS}, type=str)  # type: ignore[misc]  # members from TARGETS


@app.callback()
def cli() -> None:
    """Convert hand-written PyTorch training loops to PyTorch Lightning."""


@app.command(cls=Command)
def convert(
    paths: list[Path] = typer.Argument(..., help="Python files, notebooks or folders to convert."),
    output: Path | None = typer.Option(None, "-o", "--output", help="Where to write (one input only)."),
    stdout: bool = typer.Option(False, "--stdout", help="Print the converted source, write nothing."),
    diff: bool = typer.Option(False, "--diff", help="Show a unified diff, write nothing."),
    in_place: bool = typer.Option(False, "--in-place", help="Rewrite the file itself (atomically)."),
    target: Target | None = typer.Option(
        None,
        "--target",
        show_default=False,
        help=(
            "lightning (the default) / pytorch_lightning: a LightningModule and a Trainer (the package "
            "it imports); fabric: keep the loop, run it with Lightning Fabric; auto: the Trainer unless it "
            "leaves TODOs that Fabric avoids. Default: `target` of \\[tool.loopshift], else lightning."
        ),
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing output file."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print diagnostics only."),
    verify: bool = typer.Option(
        False, "--verify", help="Then check the output computes the original's losses."
    ),
    report: Path | None = typer.Option(
        None, "--report", help="Also write what happened to each file as JSON."
    ),
    include_outputs: bool = typer.Option(
        False,
        "--include-outputs",
        help=(
            "In a folder, also convert files named *_lightning.py "
            "(skipped by default: outputs of an earlier run)."
        ),
    ),
) -> None:
    """Convert manual training loops to a LightningModule and a Trainer.

    A folder's .py and .ipynb files are converted in parallel, honouring `exclude` of \\[tool.loopshift]
    and .gitignore; files without a loop are skipped quietly."""
    from .jobs import plural, run_job
    from .progress import Progress
    from .report import write_report
    from .workers import Interrupted, in_order

    if sum([stdout, diff, in_place, output is not None]) > 1:
        fail("error: choose one of -o, --stdout, --diff and --in-place")
    if verify and (stdout or diff):
        fail("error: --verify needs a written output: drop --stdout / --diff")
    mode = "stdout" if stdout else "diff" if diff else "in_place" if in_place else "write"
    try:
        jobs, skipped = plan(
            paths, mode, output, target and target.value, force, quiet, verify, include_outputs
        )
    except InputError as error:  # a bad pyproject.toml
        fail(str(error))
    if output is not None and len(jobs) != 1:
        fail("error: -o takes exactly one input file")
    folders = any(path.is_dir() for path in paths)
    many = (len(jobs) > 1 or folders) and not quiet  # worth a progress bar and a summary
    outcomes: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    entries, written = [], []
    with Progress(len(jobs), show=many, diff=diff) as progress:

        def show(done) -> None:
            for line, to_stderr in done.lines:
                progress.echo(line, err=to_stderr)
            if done.stdout:
                progress.write(done.stdout)
            progress.advance(done)
            outcomes[done.outcome] += 1
            outcomes["changed"] += done.changed
            if done.outcome == "failed":
                reasons[done.reason] += 1
            elif done.changed or not diff:  # --diff says nothing of a file it leaves as it is
                reasons.update(d["code"] for d in done.entry.get("diagnostics", []))
            entries.append(done.entry)
            written.extend([done.written] if done.written else [])

        try:
            # --verify runs training in subprocesses of its own: one file at a time
            for done in in_order(run_job, jobs, workers=1 if verify else None, interruptible=True):
                show(done)
        except Interrupted as interrupted:
            for done in interrupted.finished:  # done in a worker process, not shown yet
                show(done)
            progress.stop()
            typer.echo(
                f"loopshift: interrupted: {plural(len(written), 'file')} written, "
                f"{len(jobs) - len(entries)} of {len(jobs)} not converted"
                + "".join(f"\nwrote {path}" for path in written),
                err=True,
            )
            raise typer.Exit(130) from None
    if report is not None:
        write_report(report, entries)
    if many and not (diff and not outcomes["changed"] and not outcomes["failed"]):  # quiet on success
        loops = (
            sum(e.get("loops_found", 0) for e in entries),
            sum(e.get("loops_converted", 0) for e in entries),
        )
        typer.echo(summary(len(jobs), outcomes, reasons, loops, skipped, diff), err=True)
    raise typer.Exit(exit_status(outcomes, diff, folders))


def plan(
    paths: list[Path],
    mode: str,
    output: Path | None,
    target: str | None,
    force: bool,
    quiet: bool,
    verify: bool,
    include_outputs: bool = False,
) -> tuple[list[ConvertJob], int]:
    """A job for each file named and each one found below a folder (those are quiet: their diagnostics
    only), with the target and excludes of its project's [tool.loopshift]; a file named twice runs once.
    Also how many *_lightning.py files a folder held and were skipped (unless include_outputs)."""
    from .jobs import ConvertJob
    from .lint.config import settings_for
    from .lint.files import python_files

    jobs: dict[Path, ConvertJob] = {}
    color, skipped = sys.stdout.isatty(), set()
    for path in paths:
        settings = settings_for(path)
        for file in python_files(path, settings.root, settings.exclude):
            if path.is_dir() and file.stem.endswith("_lightning") and not include_outputs:
                skipped.add(file.resolve())  # our own output from an earlier run
                continue
            jobs.setdefault(
                file.resolve(),
                ConvertJob(
                    file,
                    target or settings.target,
                    mode,
                    output,
                    force,
                    quiet or path.is_dir(),
                    verify,
                    color,
                ),
            )
    project = frozenset(jobs)
    return [replace(job, project=project) for job in jobs.values()], len(skipped - set(jobs))


def summary(
    scanned: int,
    outcomes: Counter,
    reasons: Counter,
    loops: tuple[int, int],
    skipped: int = 0,
    diff: bool = False,
) -> str:
    """Files scanned and what became of them (with --diff: how many it would change); the loops found and
    converted; the count of each reason (a diagnostic code, or why a file failed)."""
    from .jobs import plural

    found = outcomes["clean"] + outcomes["todo"]
    if diff:
        line = f"loopshift: {plural(scanned, 'file')} scanned, {outcomes['changed']} would change"
    else:
        line = (
            f"loopshift: {plural(scanned, 'file')} scanned, {found} with training loops "
            f"({plural(loops[0], 'loop')}, {loops[1]} converted): {outcomes['clean']} converted cleanly, "
            f"{outcomes['todo']} with TODOs"
        )
    line += f"; {outcomes['failed']} failed"
    if skipped:
        line += f"; {skipped} skipped (earlier outputs *_lightning.py; --include-outputs to convert them)"
    if reasons:
        line += "\nby reason: " + ", ".join(f"{reason} {count}" for reason, count in sorted(reasons.items()))
    return line


def exit_status(outcomes: Counter, diff: bool, folders: bool) -> int:
    """2 for bad input, 1 for TODOs or (for files named one by one) a file without a loop; with --diff,
    1 when there is a change to show (a file convert would change), as a pre-commit check needs."""
    if outcomes["failed"]:
        return 2
    if diff:
        return 1 if outcomes["changed"] else 0
    if outcomes["todo"]:
        return 1
    if outcomes["none"] and (not folders or not outcomes["clean"]):
        return 1
    return 0


def fail(message: str) -> None:
    typer.echo(message, err=True)
    raise typer.Exit(2)


def main(argv: list[str] | None = None) -> int:
    try:
        app(args=argv, prog_name="loopshift")
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 0
    return 0


app.command(
    "verify", cls=Command, context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)(verify_command)
app.command("lint", cls=Command)(lint_command)
app.command("rules", cls=Command)(rules_command)
app.command("explain", cls=Command)(explain_command)
