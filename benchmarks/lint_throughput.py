"""How fast `loopshift lint` reads Python files, side by side in one run with a bare libcst parse of
the same files, the libcst engine (what `--fix` runs), and TorchFix and ruff where they are installed.

    python benchmarks/lint_throughput.py [FOLDER ...] [--torch-files N | --all-torch] [--latency-only]

Without FOLDER: the dev corpus (/work/shared/dev-corpus, where it exists) and a sample of N files
(default 200, every n-th file in path order) of the installed torch package (found without
importing it; --all-torch for all of it). For each set of files, on one core, in-process: a bare
`libcst.parse_module` pass, `lint_paths` (the ast engine), and the libcst engine (`run_rules_cst`,
what `lint --fix` runs); then, as whole processes over the same file list, `python -m loopshift
lint`, `torchfix` and `ruff check` (each with its default parallelism, when installed: `pip
install torchfix ruff`; they are no dependency of loopshift). Times are ratios to the bare parse.
Then the latency of `python -m loopshift lint FILE` as a whole process (best of 5), for a small
file no rule could match, a small raw training loop, and a small LightningModule with findings,
next to TorchFix and ruff on the same file, with whether libcst or torch were loaded.
A benchmark, not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import libcst as cst

from loopshift.lint import lint_paths
from loopshift.lint.engine import run_rules_cst
from loopshift.lint.files import python_files
from loopshift.lint.rules import RULES
from loopshift.source import InputError, read_source

REPO = Path(__file__).resolve().parent.parent
DEV_CORPUS = Path("/work/shared/dev-corpus")
# A small module no rule could match: what most files a pre-commit hook passes look like.
CLEAN = '''"""Paths of a run's outputs."""
import os
from pathlib import Path


def output_folder(root: str, name: str) -> Path:
    folder = Path(root) / name
    os.makedirs(folder, exist_ok=True)
    return folder
'''
# A small LightningModule with findings (LS204, LS206, LS207) that the ast engine decides alone.
LIGHTNING = """import lightning as L
import torch


class LitModel(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        loss = self.layer(batch).mean()
        self.log("train_loss", loss.item())
        return loss

    def training_epoch_end(self, outputs):
        pass


trainer = L.Trainer(gpus=1, max_epochs=3)
"""
HEAVY = ("libcst", "torch", "lightning")


def torch_folder() -> Path | None:
    spec = importlib.util.find_spec("torch")  # locates the package without importing it
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return None


def torch_files(count: int | None) -> list[Path]:
    """All of the torch package, or every n-th file of it in path order (the differential test's sample)."""
    folder = torch_folder()
    if folder is None:
        return []
    files = sorted(p for p in python_files(folder, folder, ()) if p.suffix == ".py")
    return files if count is None else files[:: max(1, len(files) // count)][:count]


def bare_parse(files: list[Path]) -> str:
    failures = 0
    for path in files:
        try:
            cst.parse_module(path.read_text(encoding="utf-8", errors="replace"))
        except Exception:
            failures += 1
    return f"{failures} unparsable"


def libcst_engine(files: list[Path]) -> str:
    findings = errors = 0
    for path in files:
        try:
            findings += len(run_rules_cst(read_source(path), str(path), RULES)[1])
        except InputError:
            errors += 1
    return f"{findings} findings, {errors} unreadable"


def lint(files: list[Path]) -> str:
    reports = lint_paths(files, workers=1)
    crashes = [r.error for r in reports if r.error and "internal error" in r.error]
    for crash in crashes[:5]:
        print("  ", crash)
    findings = sum(len(r.findings) for r in reports)
    errors = sum(1 for r in reports if r.error)
    return f"{findings} findings, {errors} unreadable, {len(crashes)} crashes"


def timed(label: str, run, baseline: float | None = None) -> float:
    start = time.perf_counter()
    outcome = run()
    seconds = time.perf_counter() - start
    ratio = f"{seconds / baseline:6.2f}x" if baseline else "  1.00x"
    print(f"  {label:<44} {seconds:8.2f} s  {ratio} the bare parse   {outcome}")
    return seconds


def tools() -> dict[str, list[str]]:
    """The other linters this machine has: their command lines, less the paths."""
    found = {}
    if shutil.which("torchfix"):
        found["torchfix"] = [shutil.which("torchfix")]
    elif importlib.util.find_spec("torchfix") is not None:
        found["torchfix"] = [sys.executable, "-m", "torchfix"]
    if shutil.which("ruff"):
        found["ruff check"] = [
            shutil.which("ruff"),
            "check",
            "--no-cache",
            "--isolated",
            "--exit-zero",
            "--quiet",
        ]
    return found


def environment(folder: str) -> dict[str, str]:
    """Run as installed code runs, with its bytecode cached (in a temporary folder, so the tree
    stays clean), whatever PYTHONDONTWRITEBYTECODE says."""
    env = {**os.environ, "PYTHONPYCACHEPREFIX": str(Path(folder) / "pycache")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def processes(files: list[Path], baseline: float) -> None:
    """Whole processes over the same files, each with its default parallelism, after a warm-up."""
    with tempfile.TemporaryDirectory() as folder:
        env = environment(folder)
        commands = {
            "python -m loopshift lint (process)": [
                sys.executable,
                "-m",
                "loopshift",
                "lint",
                "--exit-zero",
                "--statistics",
            ],
            **tools(),
        }
        for label, command in commands.items():
            # one file first, untimed: it writes the bytecode an installed tool would have
            subprocess.run([*command, str(files[0])], capture_output=True, check=False, env=env)
            start = time.perf_counter()
            subprocess.run([*command, *map(str, files)], capture_output=True, check=False, env=env)
            seconds = time.perf_counter() - start
            print(
                f"  {label + ' (process)' if 'process' not in label else label:<44} {seconds:8.2f} s  "
                f"{seconds / baseline:6.2f}x the bare parse"
            )


def throughput(label: str, files: list[Path]) -> None:
    lines = sum(path.read_bytes().count(b"\n") for path in files)
    print(f"{label}: {len(files)} files, {lines} lines")
    parse = timed("libcst.parse_module, 1 core", lambda: bare_parse(files))
    timed("loopshift lint (ast engine), 1 core", lambda: lint(files), parse)
    timed("libcst engine (--fix), 1 core", lambda: libcst_engine(files), parse)
    processes(files, parse)


def best_of(command: list[str], env: dict[str, str], runs: int = 5) -> float:
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, check=False, env=env)
        seconds.append(time.perf_counter() - start)
    return min(seconds)


def process_latency(label: str, path: Path, env: dict[str, str]) -> None:
    """`loopshift lint path` as a whole process, what it imports (`python -X importtime`), and
    the other linters on the same file."""
    command = [sys.executable, "-m", "loopshift", "lint", str(path)]
    best = best_of(command, env)  # first, so that the bytecode is cached for the import count too
    imports = subprocess.run(
        [sys.executable, "-X", "importtime", *command[1:]], capture_output=True, text=True, env=env
    ).stderr
    rows = re.findall(r"^import time:\s+(\d+) \|\s+\d+ \| *(\S+)$", imports, re.MULTILINE)
    loaded = [name for name in HEAVY if any(module == name for _, module in rows)]
    others = "  ".join(f"{name} {best_of([*tool, str(path)], env):.3f} s" for name, tool in tools().items())
    loads = "loads " + ", ".join(loaded) if loaded else "neither libcst nor torch"
    print(f"  {label:<38} {best:6.3f} s  ({loads})  {others}")


def latency() -> None:
    """One file, one process, best of 5."""
    with tempfile.TemporaryDirectory() as folder:
        env = environment(folder)
        print("one file, whole process, best of 5:")
        bare = best_of([sys.executable, "-c", "pass"], env)
        print(f"  {'bare interpreter (python -c pass)':<38} {bare:6.3f} s")
        clean, lightning = Path(folder) / "paths.py", Path(folder) / "lit.py"
        clean.write_text(CLEAN)
        lightning.write_text(LIGHTNING)
        process_latency("a small file no rule could match", clean, env)
        process_latency("a small LightningModule with findings", lightning, env)
        process_latency(
            "a small raw training loop", REPO / "tests" / "fixtures" / "flat_script" / "input.py", env
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", type=Path)
    parser.add_argument("--torch-files", type=int, default=200, help="how many files of the torch package")
    parser.add_argument("--all-torch", action="store_true", help="all of the torch package")
    parser.add_argument("--latency-only", action="store_true", help="only the one-file process latency")
    args = parser.parse_args()
    if not args.latency_only:
        sets = [(str(folder), list(python_files(folder, folder, ()))) for folder in args.folders]
        if not sets:
            if DEV_CORPUS.is_dir():
                sets.append(("dev corpus", list(python_files(DEV_CORPUS, DEV_CORPUS, ()))))
            files = torch_files(None if args.all_torch else args.torch_files)
            if files:
                sets.append(
                    ("torch package" if args.all_torch else f"torch package, {len(files)}-file sample", files)
                )
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        for label, files in sets:
            throughput(label, files)
    latency()
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
