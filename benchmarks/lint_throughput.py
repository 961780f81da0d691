"""How fast `loopshift lint` reads a folder of Python files, next to a bare libcst parse of the same files.

    python benchmarks/lint_throughput.py [FOLDER] [--limit N] [--workers N] [--latency-only]

FOLDER defaults to the installed torch package (found without importing it), else tests/fixtures.
Prints files/s and lines/s for: a bare `libcst.parse_module` pass on one core, `lint_paths` on one
core, and `lint_paths` on every core; then the latency of `python -m loopshift lint FILE` as a whole
process (best of 5, next to a bare interpreter), for a small file no rule could match (the usual
pre-commit case: its text is never parsed) and for a small raw training loop, with the import time
`python -X importtime` counts and whether libcst or torch were loaded.
A benchmark, not a test: nothing here asserts a time.

Measured with --latency-only on the 2-core development machine while other work kept it busy
(load 2.2-2.4), three runs each, before and after the lazy imports (before: commit 328d716):
- a small file no rule could match: 0.65-0.99 s before, every run importing libcst, its matchers and
  the converter (`python -X importtime -c "import loopshift.cli"`: 0.65 s); 0.19-0.51 s after,
  libcst and torch never loaded (`import loopshift.cli`: 0.06 s; most of what is left is typer and
  the pydantic it loads). `time python -m loopshift lint FILE`: real 1.00-1.15 s before, 0.33-0.47 s after.
- a small raw training loop, which has to be parsed: 0.66-0.98 s before, 0.71-0.78 s after.
- a bare interpreter: 0.03 s.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import libcst as cst

from loopshift.lint import lint_paths
from loopshift.lint.files import python_files

REPO = Path(__file__).resolve().parent.parent
# A small module no rule could match: what most files a pre-commit hook passes look like.
CLEAN = '''"""Paths of a run's outputs."""
import os
from pathlib import Path


def output_folder(root: str, name: str) -> Path:
    folder = Path(root) / name
    os.makedirs(folder, exist_ok=True)
    return folder
'''
HEAVY = ("libcst", "torch", "lightning")


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


def best_of(command: list[str], env: dict[str, str], runs: int = 5) -> float:
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, check=False, env=env)
        seconds.append(time.perf_counter() - start)
    return min(seconds)


def process_latency(label: str, path: Path, env: dict[str, str]) -> None:
    """`loopshift lint path` as a whole process, and what it imports (`python -X importtime`)."""
    command = [sys.executable, "-m", "loopshift", "lint", str(path)]
    best = best_of(command, env)  # first, so that the bytecode is cached for the import count too
    imports = subprocess.run([sys.executable, "-X", "importtime", *command[1:]], capture_output=True, text=True,
                             env=env).stderr
    rows = re.findall(r"^import time:\s+(\d+) \|\s+\d+ \| *(\S+)$", imports, re.MULTILINE)
    loaded = [name for name in HEAVY if any(module == name for _, module in rows)]
    print(f"{label:<40} {best:6.3f} s  (imports {sum(int(us) for us, _ in rows) / 1e6:.3f} s; "
          f"{'loads ' + ', '.join(loaded) if loaded else 'neither libcst nor torch loaded'})")


def latency() -> None:
    """One file, one process, best of 5. Run as installed code runs, with its bytecode cached
    (in a temporary folder, so the tree stays clean), whatever PYTHONDONTWRITEBYTECODE says."""
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "PYTHONPYCACHEPREFIX": str(Path(folder) / "pycache")}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        print(f"{'bare interpreter (python -c pass)':<40} {best_of([sys.executable, '-c', 'pass'], env):6.3f} s")
        clean = Path(folder) / "paths.py"
        clean.write_text(CLEAN)
        process_latency("one small file no rule could match", clean, env)
        process_latency("one small raw training loop", REPO / "tests" / "fixtures" / "flat_script" / "input.py", env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=None)
    parser.add_argument("--limit", type=int, default=None, help="lint only the first N files")
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="processes for the parallel run")
    parser.add_argument("--latency-only", action="store_true", help="only the one-file process latency")
    args = parser.parse_args()
    if args.latency_only:
        latency()
        return
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
    latency()


if __name__ == "__main__":
    main()
