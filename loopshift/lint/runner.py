"""Lints many files: finds them, gives each its settings, and spreads them over processes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..output import write_atomic
from ..source import InputError, read_source, source_encoding
from ..workers import in_order
from .config import settings_for
from .engine import Selectors, check_selectors, enabled_codes, fix_source, run_rules
from .files import python_files
from .rule import Finding, Rule
from .rules import RULES


@dataclass
class FileReport:
    path: str
    findings: list[Finding] = field(default_factory=list)
    fixed: Counter[str] = field(default_factory=Counter)  # code -> findings fixed
    error: str | None = None  # one line: the file could not be linted
    withheld: list[str] = field(default_factory=list)  # why unsafe fixes were not applied (--unsafe-fixes)


@dataclass(frozen=True)
class Job:
    path: Path
    codes: frozenset[str]
    target: str = "lightning"
    fix: bool = False
    unsafe_fixes: bool = False


def lint_paths(
    paths: Iterable[Path | str],
    select: Selectors = None,
    ignore: Selectors = None,
    fix: bool = False,
    workers: int | None = None,
    unsafe_fixes: bool = False,
) -> list[FileReport]:
    """Lints files and folders with the settings of their pyproject.toml, the arguments winning.
    A file that cannot be read or parsed gets a report with `error`; the others go on."""
    check_selectors(select, ignore)
    reports: list[FileReport] = []
    jobs: list[Job] = []
    for path in map(Path, paths):
        try:
            jobs.extend(plan(path, select, ignore, fix, unsafe_fixes))
        except InputError as error:  # a bad pyproject.toml
            reports.append(FileReport(str(path), error=str(error)))
    jobs = list({job.path.resolve(): job for job in jobs}.values())  # a file named twice is linted once
    reports.extend(in_order(run_job, jobs, workers))
    return reports


def plan(
    path: Path, select: Selectors, ignore: Selectors, fix: bool, unsafe_fixes: bool = False
) -> Iterator[Job]:
    settings = settings_for(path)
    for file in python_files(path, settings.root, settings.exclude):
        layers = [(settings.select, settings.ignore), (select, ignore), (None, settings.ignored_for(file))]
        yield Job(file, frozenset(enabled_codes(layers)), settings.target, fix, unsafe_fixes)


def run_job(job: Job) -> FileReport:
    path = str(job.path)
    rules = [rule for rule in RULES if rule.code in job.codes]
    try:
        if job.path.suffix == ".ipynb":
            return run_notebook_job(job, rules)
        source = read_source(job.path)
        if not job.fix:
            return FileReport(path, run_rules(source, path, rules, job.target)[1])
        text = source.replace("\r\n", "\n")
        withheld: list[str] = []
        fixed_source, findings, fixed = fix_source(text, path, rules, job.target, job.unsafe_fixes, withheld)
        if fixed:
            write_atomic(
                job.path,
                fixed_source,
                newline="\r\n" if "\r\n" in source else "\n",
                encoding=source_encoding(job.path),
            )
        return FileReport(path, findings, fixed, withheld=withheld)
    except InputError as error:
        return FileReport(path, error=str(error))
    except Exception as error:  # a bug of ours: one line, and the other files go on
        return FileReport(path, error=f"{path}: internal error: {type(error).__name__}: {error}")


def run_notebook_job(job: Job, rules: list[Rule]) -> FileReport:
    """A notebook's code cells linted (and fixed) as one module; findings name their cell."""
    from ..notebook import NotebookCode, notebook_text, read_notebook

    path = str(job.path)
    cells = NotebookCode(read_notebook(job.path), path)
    fixed: Counter[str] = Counter()
    withheld: list[str] = []
    if job.fix:
        code, _, fixed = fix_source(cells.code, path, rules, job.target, job.unsafe_fixes, withheld)
        if fixed:
            notebook = cells.rebuild(code)
            write_atomic(job.path, notebook_text(notebook))
            cells = NotebookCode(notebook, path)  # what is left, counted in the cells as written
    findings = run_rules(cells.code, path, rules, job.target)[1]
    return FileReport(path, [cells.in_cell(finding) for finding in findings], fixed, withheld=withheld)
