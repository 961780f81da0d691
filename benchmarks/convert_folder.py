"""`loopshift convert DIR` on one core and on every core: the same jobs, in worker processes or not.

    python benchmarks/convert_folder.py [FOLDER] [--copies N]

FOLDER defaults to the fixtures' inputs and the dev corpus, copied N times (default 3) into a
temporary folder, so that the outputs land there. Prints files/s for one core and for every core
(`os.cpu_count()`), best of 3 each. A benchmark, not a test: nothing here asserts a time.

Measured on the 2-core development machine, otherwise idle (commit after 5541089), 192 files
(64 fixture inputs and dev-corpus scripts, three copies): 1 worker 38.2 s (5.0 files/s),
2 workers 20.1 s (9.6 files/s).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from loopshift.cli import plan
from loopshift.jobs import run_job
from loopshift.workers import in_order

ROOT = Path(__file__).resolve().parent.parent


def sources(folder: Path | None) -> list[Path]:
    if folder is not None:
        return sorted(folder.rglob("*.py"))
    return sorted(ROOT.glob("tests/fixtures/*/input.py")) + sorted(
        (ROOT.parent / "shared" / "dev-corpus").rglob("*.py")
    )


def timed(folder: Path, workers: int) -> float:
    best = float("inf")
    for _ in range(3):
        for output in folder.rglob("*_lightning.py"):
            output.unlink()
        jobs = plan([folder], "write", None, None, False, True, False)
        started = time.perf_counter()
        outcomes = list(in_order(run_job, jobs, workers))
        best = min(best, time.perf_counter() - started)
    assert all(o.outcome != "failed" for o in outcomes), [o.error for o in outcomes if o.error]
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path)
    parser.add_argument("--copies", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        files = sources(args.folder)
        for copy in range(args.copies):
            for number, source in enumerate(files):
                shutil.copy(source, folder / f"c{copy}_{number:03}_{source.parent.name}_{source.name}")
        count = len(files) * args.copies
        for workers in (1, os.cpu_count() or 1):
            seconds = timed(folder, workers)
            print(f"{workers} worker(s): {count} files in {seconds:.2f} s, {count / seconds:.1f} files/s")


if __name__ == "__main__":
    main()
