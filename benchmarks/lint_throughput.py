"""How fast `loopshift lint` reads a folder of Python files, next to a bare libcst parse of the same files.

    python benchmarks/lint_throughput.py [FOLDER] [--limit N] [--workers N]

FOLDER defaults to the installed torch package (found without importing it), else tests/fixtures.
Prints files/s and lines/s for: a bare `libcst.parse_module` pass on one core, `lint_paths` on one
core, and `lint_paths` on every core; then the latency of `loopshift lint FILE` as a whole process.
A benchmark, not a test: nothing here asserts a time.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import libcst as cst

from loopshift.lint import lint_paths
from loopshift.lint.files import python_files

REPO = Path(__file__).resolve().parent.parent
# `loopshift lint` as a process, through a CLI that registers the command the way cli.py does
# (also before cli.py registers it).
PROCESS = ("import sys, typer\nfrom loopshift.lint.command import lint_command\n"
           "app = typer.Typer()\napp.command('lint')(lint_command)\napp.command('other')(lambda: None)\n"
           "app(['lint', *sys.argv[1:]], prog_name='loopshift')\n")


def default_folder() -> Path:
    spec = importlib.util.find_spec("torch")  # locates the package without importing it
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return REPO / "tests" / "fixtures"


def bare_parse(files: list[Path]) -> int:
    failures = 0
    for path in files:
        try:
            cst.parse_module(path.read_text(encoding="utf-8", errors="replace"))
        except Exception:
            failures += 1
    return failures


def timed(label: str, run, files: int, lines: int, baseline: float | None = None) -> float:
    start = time.perf_counter()
    outcome = run()
    seconds = time.perf_counter() - start
    ratio = f"  {seconds / baseline:5.2f}x the bare parse" if baseline else ""
    print(f"{label:<28} {seconds:8.2f} s  {files / seconds:8.1f} files/s  {lines / seconds:10.0f} lines/s{ratio}  {outcome}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=None)
    parser.add_argument("--limit", type=int, default=None, help="lint only the first N files")
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="processes for the parallel run")
    args = parser.parse_args()
    folder = args.folder or default_folder()
    files = list(python_files(folder, folder, ()))[: args.limit]
    lines = sum(path.read_bytes().count(b"\n") for path in files)
    print(f"{folder}: {len(files)} files, {lines} lines, {args.workers} workers for the parallel run")

    def lint(workers: int) -> str:
        reports = lint_paths(files, workers=workers)
        crashes = [r.error for r in reports if r.error and "internal error" in r.error]
        for crash in crashes[:5]:
            print("  ", crash)
        findings = sum(len(r.findings) for r in reports)
        errors = sum(1 for r in reports if r.error)
        return f"{findings} findings, {errors} unreadable, {len(crashes)} crashes"

    parse = timed("libcst.parse_module, 1 core", lambda: f"{bare_parse(files)} unparsable", len(files), lines)
    timed("loopshift lint, 1 core", lambda: lint(1), len(files), lines, parse)
    timed(f"loopshift lint, {args.workers} cores", lambda: lint(args.workers), len(files), lines, parse)

    small = REPO / "tests" / "fixtures" / "flat_script" / "input.py"
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", PROCESS, str(small)], capture_output=True, check=False)
        runs.append(time.perf_counter() - start)
    print(f"one small file, whole process: {min(runs):.3f} s (best of 3)")


if __name__ == "__main__":
    main()
