"""How much verify costs over running the script by hand.

Times, on one converted fixture: a bare `python script.py` with `fast_dev_run=True` written into
its Trainer call, `loopshift verify script.py`, and `loopshift verify --original`. Prints the
ratios (targets: verify < 1.3x the bare run, parity < 2.5x).

    OMP_NUM_THREADS=1 python benchmarks/verify_overhead.py [tests/fixtures/<case>] [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        command, cwd=cwd, check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", nargs="?", default=str(ROOT / "tests" / "fixtures" / "mnist_style_functions"))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    case = Path(args.case)
    converted = (case / "expected.py").read_text()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        bare = folder / "bare.py"
        bare.write_text(converted.replace("L.Trainer(", "L.Trainer(fast_dev_run=True, logger=False, ", 1))
        script = folder / "converted.py"
        script.write_text(converted)
        original = folder / "original.py"
        original.write_text((case / "input.py").read_text())
        loopshift = [sys.executable, "-m", "loopshift", "verify"]
        runs = {
            "bare python (fast_dev_run)": [sys.executable, str(bare)],
            "loopshift verify": [*loopshift, str(script)],
            "loopshift verify --original": [*loopshift, str(script), "--original", str(original)],
        }
        medians = {
            name: statistics.median(timed(command, folder) for _ in range(args.repeat))
            for name, command in runs.items()
        }
    baseline = medians["bare python (fast_dev_run)"]
    print(f"case: {case.name}, median of {args.repeat} runs")
    for name, seconds in medians.items():
        print(f"  {name:<30} {seconds:6.2f} s  {seconds / baseline:5.2f}x")


if __name__ == "__main__":
    main()
