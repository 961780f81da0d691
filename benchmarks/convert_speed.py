"""Conversion throughput: converts every input of tests/fixtures and the dev corpus N times.

    python benchmarks/convert_speed.py [--repeat N] [PATH ...]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from loopshift import convert_source

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path,
                        default=[ROOT / "tests" / "fixtures", ROOT.parent / "shared" / "dev-corpus"])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    files = sorted(f for p in args.paths for f in ([p] if p.is_file() else p.rglob("*.py"))
                   if f.name not in ("expected.py",))
    sources = [f.read_text() for f in files]
    lines = sum(s.count("\n") for s in sources)
    started = time.perf_counter()
    for _ in range(args.repeat):
        for source in sources:
            convert_source(source)
    seconds = (time.perf_counter() - started) / args.repeat
    print(f"{len(files)} files, {lines} lines: {seconds * 1000:.0f} ms per pass, "
          f"{len(files) / seconds:.0f} files/s, {lines / seconds:.0f} lines/s")


if __name__ == "__main__":
    main()
