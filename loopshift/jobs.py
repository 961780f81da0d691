"""One file's conversion as a job that prints nothing: what it has to say comes back as lines, so
that a folder's files can run in worker processes while the parent shows progress."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from .output import default_output, unified_diff, write_atomic
from .report import file_entry
from .source import InputError, read_source, source_encoding
from .workers import writing


@dataclass(frozen=True)
class ConvertJob:
    path: Path
    target: str
    mode: str = "write"  # write, stdout, diff, in_place
    output: Path | None = None
    force: bool = False
    quiet: bool = False  # diagnostics only (files found by walking a folder are quiet)
    verify: bool = False
    color: bool = False  # a coloured diff, for a terminal
    project: frozenset[Path] = frozenset()  # every file of this run (resolved): each has a job of its own


@dataclass
class FileOutcome:
    """ "clean", "todo" (diagnostics or failed parity), "none" (no loop) or "failed" (bad input or
    a bug of ours), with the lines to print: (text, on stderr)."""

    path: Path
    outcome: str
    entry: dict  # the file's --report entry
    lines: list[tuple[str, bool]] = field(default_factory=list)
    stdout: str = ""  # the converted code or the diff, in those modes
    error: str | None = None
    changed: bool = False  # converting changes the file (what --diff reports)
    written: Path | None = None  # the file written, if any
    note: str | None = None  # what became of the file, when "converted" would say it wrongly

    @property
    def reason(self) -> str:
        """Why the file failed, short enough to count: "syntax error", "no such file", ..."""
        error = self.error or ""
        if ": error: " not in error:
            return "internal error"
        reason = error.split(": error: ", 1)[1]
        for stop in (":", ";", " ("):
            reason = reason.split(stop)[0]
        return reason


def run_job(job: ConvertJob) -> FileOutcome:
    """Converts one file, never raising: bad input and our own bugs become a "failed" outcome."""
    lines: list[tuple[str, bool]] = []
    try:
        convert = convert_notebook if job.path.suffix == ".ipynb" else convert_script
        done = FileOutcome(job.path, "none", {}, lines)
        done.outcome, result, done.stdout = convert(job, lines, done)
        done.entry = file_entry(job.path, done.outcome, result)
        return done
    except InputError as error:
        message = str(error)
    except Exception as error:  # a bug of ours: said in one line, the file left alone
        message = f"{job.path}: internal error: {type(error).__name__}: {error}"
    return FileOutcome(
        job.path,
        "failed",
        file_entry(job.path, "failed", error=message),
        [*lines, (message, True)],
        error=message,
    )


def convert_script(job: ConvertJob, lines: list, done: FileOutcome) -> tuple:
    from .convert import convert_source  # loads libcst: only the commands that convert pay for it

    path = job.path
    source = read_source(path)
    text = source.replace("\r\n", "\n")  # converted as LF, written back with the file's own line endings
    result = honour_noqa(convert_source(text, target=job.target, path=str(path)), text)
    code, done.changed = result.code, result.code != text
    if result.loops_found == 0 and not result.diagnostics:
        followed = follow_imports(job, text, lines, done)
        if followed is not None:
            return followed
    if job.mode == "diff" and not done.changed:
        return outcome(job, result, lines), result, ""  # nothing convert would change: nothing to say
    say(job, lines, result, job.mode in ("stdout", "diff"))
    if job.mode == "stdout":
        return outcome(job, result, lines), result, code
    if job.mode == "diff":
        done.note = "would change"
        return outcome(job, result, lines), result, unified_diff(text, code, str(path), color=job.color)
    if writes(job, result, done):
        writing()  # from here Ctrl-C lets the job finish: what it writes is said
        destination = destination_of(job)
        converted = job.verify and result.loops_converted
        original = keep_original(path, source) if converted and job.mode == "in_place" else path
        write_atomic(
            destination, code, newline="\r\n" if "\r\n" in source else "\n", encoding=source_encoding(path)
        )
        done.written = destination
        if not job.quiet:
            lines.append((f"wrote {destination}", True))
        if converted:
            try:
                passed = verify_parity(destination, original, lines)
            finally:
                if original != path:
                    original.unlink()
            if not passed:
                return "todo", result, ""
    return outcome(job, result, lines), result, ""


def follow_imports(job: ConvertJob, text: str, lines: list, done: FileOutcome) -> tuple | None:
    """A script with no loop of its own that imports a module of its folder holding one
    (`from trainer import Trainer`): the module is converted with it, in the same mode, and in write
    mode the script's copy imports the converted module (`train_lightning.py` with
    `from trainer_lightning import Trainer`), so the pair runs as the original pair did. A module
    with a job of its own in this run is converted there. None when nothing is followed."""
    from .core import Result
    from .project import local_imports, output_module, trains, with_imports_renamed

    modules = [i for i in local_imports(job.path, text) if trains(i.file)]
    if not modules:
        return None
    if job.mode == "stdout":  # one file's code on stdout: say where the loop is
        for imported in modules:
            where = f"`{imported.module}` (line {imported.line})"
            lines.append(
                (
                    f"{job.path}: no training loop here; it imports {where}, "
                    f"which trains: convert {imported.file}",
                    True,
                )
            )
        return None
    statuses, diffs, renames = [], [], {}
    for imported in modules:
        if imported.file.resolve() in job.project:
            if job.mode == "write" and converts(imported.file, job.target):
                renames[imported.module] = output_module(imported.module, imported.file)
            continue  # its own job converts it
        if not job.quiet:
            where = f"`{imported.module}` (line {imported.line})"
            lines.append(
                (
                    f"{job.path}: no training loop here; following the import of {where} to {imported.file}",
                    True,
                )
            )
        followed = FileOutcome(imported.file, "none", {}, lines)
        status, _, stdout = convert_script(
            replace(job, path=imported.file, output=None, verify=False), lines, followed
        )
        statuses.append(status)
        diffs.append(stdout)
        if followed.written is not None and job.mode == "write":
            renames[imported.module] = output_module(imported.module, imported.file)
    done.stdout = "".join(diffs)
    result = Result(text)
    if renames:
        writing()
        destination = destination_of(job)
        write_atomic(destination, with_imports_renamed(text, renames), encoding=source_encoding(job.path))
        done.written, done.changed = destination, True
        if not job.quiet:
            lines.append((f"wrote {destination} (importing {', '.join(renames.values())})", True))
        if job.verify and not verify_parity(destination, job.path, lines):
            return "todo", result, done.stdout
    if not statuses and not renames:
        return None
    status = "todo" if "todo" in statuses else "clean" if "clean" in statuses or renames else "none"
    done.note = f"its training loop followed into {', '.join(str(i.file) for i in modules)}"
    return status, result, done.stdout


def converts(file: Path, target: str) -> bool:
    """Whether a module's own job writes a converted copy."""
    from .convert import convert_source

    try:
        return convert_source(read_source(file), target=target, path=str(file)).loops_converted > 0
    except InputError:
        return False


def convert_notebook(job: ConvertJob, lines: list, done: FileOutcome) -> tuple:
    """convert_script for a Jupyter notebook: its code cells converted as one module."""
    from .convert import convert_source
    from .notebook import NotebookCode, notebook_text, read_notebook

    path = job.path
    if job.verify:
        raise InputError(f"{path}: error: --verify does not run notebooks; verify a script instead")
    cells = NotebookCode(read_notebook(path), str(path))
    result = honour_noqa(convert_source(cells.code, target=job.target, path=str(path)), cells.code)
    code, result.diagnostics = result.code, [cells.in_cell(d) for d in result.diagnostics]
    done.changed = code != cells.code
    if job.mode == "diff" and not done.changed:
        return outcome(job, result, lines), result, ""
    say(job, lines, result, job.mode in ("stdout", "diff"))
    if job.mode == "stdout":
        return outcome(job, result, lines), result, notebook_text(cells.rebuild(code))
    if job.mode == "diff":
        done.note = "would change"
        return outcome(job, result, lines), result, cells.diff(code, color=job.color)
    if writes(job, result, done):
        writing()
        destination = destination_of(job)
        write_atomic(destination, notebook_text(cells.rebuild(code)))
        done.written = destination
        if not job.quiet:
            lines.append((f"wrote {destination}", True))
    return outcome(job, result, lines), result, ""


def writes(job: ConvertJob, result, done: FileOutcome) -> bool:
    """Whether a write mode writes: a conversion, or (in place) the TODO comments of loops that could not
    be converted, so that the file is then as convert leaves it and `--diff` on it is clean. A new
    `<stem>_lightning.py` holding only TODO comments would be the input again: it is not written."""
    todos = len(result.diagnostics)
    if result.loops_converted:
        return True
    if job.mode == "in_place" and done.changed:
        done.note = f"TODO comments added ({todos})"
        return True
    if todos and job.mode != "in_place":  # in place, the TODO comments are there already
        done.note = f"not written: {plural(todos, 'TODO')}"
        if not job.quiet:
            lines_note = "no loop could be converted; `--in-place` adds the TODO comments to the file itself"
            done.lines.append((f"{job.path}: {done.note} ({lines_note})", True))
    return False


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def honour_noqa(result, source: str):
    """`# noqa: LS002` (or a bare `# noqa`) on the line an LS0xx diagnostic names leaves that code as it
    was: the TODO comment convert would insert and the diagnostic go. Diagnostics whose TODO is more than
    an inserted comment line (a `break` replaced by `pass`) stay."""
    if not result.diagnostics or "noqa" not in source:
        return result
    from .core import TODO
    from .lint.engine import is_suppressed

    lines, code = source.split("\n"), result.code.split("\n")
    present = {line.strip() for line in lines}
    kept = []
    for diagnostic in result.diagnostics:
        comment = f"{TODO}{diagnostic.message} ({diagnostic.code})"
        at = next((number for number, line in enumerate(code) if line.strip() == comment), None)
        if (
            diagnostic.code.startswith("LS0")
            and at is not None
            and comment not in present
            and is_suppressed(diagnostic, lines)
        ):
            del code[at]
        else:
            kept.append(diagnostic)
    if len(kept) < len(result.diagnostics):
        result.code, result.diagnostics = "\n".join(code), kept
        result.hint = result.hint if kept else None
    return result


def say(job: ConvertJob, lines: list, result, previewing: bool) -> None:
    """The diagnostics (on stderr when stdout carries the code or the diff) and the Fabric hint."""
    lines += [(diagnostic.render(str(job.path)), previewing) for diagnostic in result.diagnostics]
    if result.hint and not job.quiet:
        lines.append((result.hint, True))


def destination_of(job: ConvertJob) -> Path:
    in_place = job.mode == "in_place"
    destination = job.path if in_place else (job.output or default_output(job.path))
    if destination.exists() and not (in_place or job.force):
        raise InputError(f"{destination}: error: already exists; use --force to overwrite it")
    return destination


def outcome(job: ConvertJob, result, lines: list) -> str:
    """How a conversion went: "clean", "todo" (diagnostics) or "none" (no loop: said unless quiet
    or in a preview, where nothing to change is clean, as the pre-commit hook needs)."""
    if result.loops_converted == 0 and not result.diagnostics:
        if not (job.quiet or job.mode == "diff"):
            left = (
                result.loops_found
                and f"nothing to convert: {plural(result.loops_found, 'loop')} left alone by noqa"
            )
            lines.append((f"{job.path}: {left or 'no training loop found'}", True))
        return "none"
    return "todo" if result.diagnostics else "clean"


def keep_original(path: Path, source: str) -> Path:
    """A copy of the input beside it (so its sibling imports work) for verifying an in-place rewrite."""
    copy = path.with_name(f".{path.stem}.loopshift-original{path.suffix}")
    write_atomic(copy, source, encoding=source_encoding(path))
    return copy


def verify_parity(converted: Path, original: Path, lines: list) -> bool:
    from .verify import verify
    from .verify.command import render_result

    result = verify(converted, original=original, steps=3)
    lines.append((render_result(result), False))
    return result.ok
