"""The command line: a thin layer over the library API."""
from __future__ import annotations

import sys
from collections import Counter
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

import typer

from .output import default_output, unified_diff, write_atomic
from .report import file_entry, write_report

if TYPE_CHECKING:
    from .convert import Result
from .source import InputError, read_source, source_encoding
from .targets import TARGETS
from .lint.command import explain_command, lint_command, rules_command
from .verify.command import verify_command

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Convert hand-written PyTorch training loops to PyTorch Lightning.")


Target = Enum("Target", {name: name for name in TARGETS}, type=str)


def python_files(paths: List[Path]) -> List[tuple]:
    """(file, whether it was found by walking a folder): a folder's files without a loop are skipped quietly."""
    files = []
    for path in paths:
        if path.is_dir():
            files += [(p, True) for p in sorted([*path.rglob("*.py"), *path.rglob("*.ipynb")])
                      if not p.stem.endswith("_lightning")
                      and not any(part.startswith(".") for part in p.relative_to(path).parts)]
        else:
            files.append((path, False))
    return files


def newline_of(source: str) -> str:
    return "\r\n" if "\r\n" in source else "\n"


@app.callback()
def cli() -> None:
    """Convert hand-written PyTorch training loops to PyTorch Lightning."""


@app.command()
def convert(
    paths: List[Path] = typer.Argument(..., help="Python files (or folders) to convert."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Where to write (one input only)."),
    stdout: bool = typer.Option(False, "--stdout", help="Print the converted source, write nothing."),
    diff: bool = typer.Option(False, "--diff", help="Show a unified diff, write nothing."),
    in_place: bool = typer.Option(False, "--in-place", help="Rewrite the file itself (atomically)."),
    target: Target = typer.Option(Target.lightning, "--target", help=(
        "lightning / pytorch_lightning: a LightningModule and a Trainer (the package it imports); fabric: keep "
        "the loop, run it with Lightning Fabric; auto: the Trainer unless it leaves TODOs that Fabric avoids.")),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing output file."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print diagnostics only."),
    verify: bool = typer.Option(False, "--verify", help="Then check the output computes the original's losses."),
    report: Optional[Path] = typer.Option(None, "--report", help="Also write what happened to each file as JSON."),
) -> None:
    """Convert manual training loops to a LightningModule and a Trainer."""
    if sum([stdout, diff, in_place, output is not None]) > 1:
        fail("error: choose one of -o, --stdout, --diff and --in-place")
    files = python_files(paths)
    if output is not None and len(files) != 1:
        fail("error: -o takes exactly one input file")
    if verify and (stdout or diff):
        fail("error: --verify needs a written output: drop --stdout / --diff")
    outcomes, entries = Counter(), []
    for path, in_folder in files:
        try:
            outcome, result = convert_one(path, output, stdout, diff, in_place, target.value, force,
                                          quiet or in_folder, verify)
            entries.append(file_entry(path, outcome, result))
        except InputError as error:
            typer.echo(str(error), err=True)
            outcome = "failed"
            entries.append(file_entry(path, outcome, error=str(error)))
        except Exception as error:  # a bug of ours: say so in one line, leave the file alone
            message = f"{path}: internal error: {type(error).__name__}: {error}"
            typer.echo(message, err=True)
            outcome = "failed"
            entries.append(file_entry(path, outcome, error=message))
        outcomes[outcome] += 1
    if report is not None:
        write_report(report, entries)
    if len(files) > 1 and not quiet:
        typer.echo(summary(len(files), outcomes), err=True)
    raise typer.Exit(exit_status(outcomes, diff, any(in_folder for _, in_folder in files)))


def summary(scanned: int, outcomes: Counter) -> str:
    found = outcomes["clean"] + outcomes["todo"]
    return (f"loopshift: {scanned} files scanned, {found} with training loops: {outcomes['clean']} converted "
            f"cleanly, {outcomes['todo']} with TODOs; {outcomes['failed']} failed")


def exit_status(outcomes: Counter, diff: bool, folders: bool) -> int:
    """2 for bad input, 1 for TODOs or (for files named one by one) a file without a loop."""
    if outcomes["failed"]:
        return 2
    if outcomes["todo"] or (diff and outcomes["clean"]):
        return 1
    if outcomes["none"] and not diff and (not folders or not outcomes["clean"]):
        return 1
    return 0


def convert_one(path: Path, output: Optional[Path], stdout: bool, diff: bool, in_place: bool,
                target: str, force: bool, quiet: bool, verify: bool = False) -> tuple[str, Result]:
    """Converts one file; says how it went ("clean", "todo": diagnostics or failed parity, "none"),
    with the conversion's result."""
    from .convert import convert_source  # loads libcst: only the commands that convert pay for it

    if path.suffix == ".ipynb":
        return convert_notebook(path, output, stdout, diff, in_place, target, force, quiet, verify)
    source = read_source(path)
    text = source.replace("\r\n", "\n")  # converted as LF, written back with the file's own line endings
    result = convert_source(text, target=target, path=str(path))
    code = result.code
    for diagnostic in result.diagnostics:  # stdout carries the code or the diff in those modes
        typer.echo(diagnostic.render(str(path)), err=stdout or diff)
    if result.hint and not quiet:
        typer.echo(result.hint, err=True)
    if stdout:
        sys.stdout.write(code)
    elif diff:
        sys.stdout.write(unified_diff(text, code, str(path), color=sys.stdout.isatty()))
    elif result.loops_converted:
        destination = destination_of(path, output, in_place, force)
        original = keep_original(path, source) if verify and in_place else path
        write_atomic(destination, code, newline=newline_of(source), encoding=source_encoding(path))
        if not quiet:
            typer.echo(f"wrote {destination}", err=True)
        if verify:
            try:
                passed = verify_parity(destination, original)
            finally:
                if original != path:
                    original.unlink()
            if not passed:
                return "todo", result
    return outcome(path, result, quiet or diff), result


def convert_notebook(path: Path, output: Optional[Path], stdout: bool, diff: bool, in_place: bool,
                     target: str, force: bool, quiet: bool, verify: bool) -> tuple[str, Result]:
    """convert_one for a Jupyter notebook: its code cells converted as one module."""
    from .convert import convert_source
    from .notebook import NotebookCode, notebook_text, read_notebook

    if verify:
        raise InputError(f"{path}: error: --verify does not run notebooks; verify a script instead")
    cells = NotebookCode(read_notebook(path), str(path))
    result = convert_source(cells.code, target=target, path=str(path))
    code, result.diagnostics = result.code, [cells.in_cell(d) for d in result.diagnostics]
    for diagnostic in result.diagnostics:
        typer.echo(diagnostic.render(str(path)), err=stdout or diff)
    if result.hint and not quiet:
        typer.echo(result.hint, err=True)
    if stdout:
        sys.stdout.write(notebook_text(cells.rebuild(code)))
    elif diff:
        sys.stdout.write(cells.diff(code, color=sys.stdout.isatty()))
    elif result.loops_converted:
        destination = destination_of(path, output, in_place, force)
        write_atomic(destination, notebook_text(cells.rebuild(code)))
        if not quiet:
            typer.echo(f"wrote {destination}", err=True)
    return outcome(path, result, quiet or diff), result


def destination_of(path: Path, output: Optional[Path], in_place: bool, force: bool) -> Path:
    destination = path if in_place else (output or default_output(path))
    if destination.exists() and not (in_place or force):
        raise InputError(f"{destination}: error: already exists; use --force to overwrite it")
    return destination


def outcome(path: Path, result, quiet: bool) -> str:
    """How a conversion went: "clean", "todo" (diagnostics) or "none" (no loop: said unless quiet
    or in a preview, where nothing to change is clean, as the pre-commit hook needs)."""
    if result.loops_converted == 0 and not result.diagnostics:
        if not quiet:
            typer.echo(f"{path}: no training loop found", err=True)
        return "none"
    return "todo" if result.diagnostics else "clean"


app.command("verify", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(verify_command)
app.command("lint")(lint_command)
app.command("rules")(rules_command)
app.command("explain")(explain_command)


def keep_original(path: Path, source: str) -> Path:
    """A copy of the input beside it (so its sibling imports work) for verifying an in-place rewrite."""
    copy = path.with_name(f".{path.stem}.loopshift-original{path.suffix}")
    write_atomic(copy, source, encoding=source_encoding(path))
    return copy


def verify_parity(converted: Path, original: Path) -> bool:
    from .verify import verify
    from .verify.command import render_result

    result = verify(converted, original=original, steps=3)
    typer.echo(render_result(result))
    return result.ok


def fail(message: str) -> None:
    typer.echo(message, err=True)
    raise typer.Exit(2)


def main(argv: Optional[List[str]] = None) -> int:
    try:
        app(args=argv, prog_name="loopshift")
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 0
    return 0
