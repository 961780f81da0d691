"""Conversion throughput: converts every input of tests/fixtures and the dev corpus N times.

    python benchmarks/convert_speed.py [--repeat N] [PATH ...]
    python benchmarks/convert_speed.py --sizes 0.25 1 5 [--timeout S]

With --sizes, each size (in MB) is a file made of the dev corpus's scripts one after another
(nothing renamed: later definitions shadow earlier ones; `from __future__` imports go first),
linted and converted, each in a fresh process, and compared with a bare libcst.parse_module of
the same file: CPU seconds (wall seconds in parentheses: on a loaded machine they run longer),
ratio of the CPU times and peak memory (ru_maxrss) of each. Lint is `lint_source` with every
rule, what `loopshift lint FILE` runs.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "dev-corpus"


def concatenated(megabytes: float, corpus: Path = CORPUS) -> str:
    """The corpus's top-level scripts in name order, repeated until the text reaches the size."""
    scripts = [f.read_text() for f in sorted(corpus.glob("*.py"))]
    if not scripts:
        sys.exit(f"no scripts in {corpus}")
    future, parts, size = [], [], 0
    while size < megabytes * 1_000_000:
        for script in scripts:
            lines = script.splitlines(keepends=True)
            future += [line for line in lines if line.startswith("from __future__")]
            part = "".join(line for line in lines if not line.startswith("from __future__")) + "\n\n"
            parts.append(part)
            size += len(part)
            if size >= megabytes * 1_000_000:
                break
    return "".join(dict.fromkeys(future)) + "".join(parts)


def measure(kind: str, path: Path) -> None:
    """In a child process: time one parse or one conversion of the file, print seconds and peak RSS."""
    source = path.read_text()
    import libcst

    from loopshift import convert_source
    from loopshift.lint import lint_source

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started, cpu = time.perf_counter(), time.process_time()
    if kind == "parse":
        libcst.parse_module(source)
    elif kind == "lint":
        lint_source(source, str(path))
    else:
        convert_source(source, path=str(path))
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps({"seconds": seconds, "cpu": cpu, "peak_mb": peak / 1024, "baseline_mb": baseline / 1024})
    )


def child(kind: str, path: Path, timeout: float) -> dict | None:
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--measure", kind, str(path)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        ).stdout
    except subprocess.TimeoutExpired:
        return None
    except subprocess.CalledProcessError as error:
        sys.exit(error.stderr)
    return json.loads(out.splitlines()[-1])


def sizes(megabytes: list[float], timeout: float, keep: Path | None) -> None:
    import os
    import tempfile

    print(f"load: {os.getloadavg()[0]:.2f} (1 min average) on {os.cpu_count()} cores", flush=True)
    folder = keep or Path(tempfile.mkdtemp())
    folder.mkdir(parents=True, exist_ok=True)
    for size in megabytes:
        path = folder / f"corpus_{size:g}mb.py"
        source = concatenated(size)
        path.write_text(source)
        parse = child("parse", path, timeout)
        lint = child("lint", path, timeout)
        lines, backward = source.count("\n"), source.count(".backward(")
        head = f"{size:g} MB ({len(source) / 1e6:.2f} MB, {lines} lines, {backward} backward calls):"
        print(
            f"{head} parse {parse['cpu']:.1f} s ({parse['peak_mb']:.0f} MB peak), "
            + (
                f"lint {lint['cpu']:.1f} s ({lint['peak_mb']:.0f} MB peak), "
                f"ratio {lint['cpu'] / parse['cpu']:.2f}x"
                if lint
                else f"lint > {timeout:.0f} s wall (timed out)"
            ),
            flush=True,
        )
        convert = child("convert", path, timeout)
        if convert is None:
            print(
                f"{head} parse {parse['cpu']:.1f} s, convert > {timeout:.0f} s wall (timed out)", flush=True
            )
            continue
        print(
            f"{head} parse {parse['cpu']:.1f} s ({parse['seconds']:.1f} s wall, "
            f"{parse['peak_mb']:.0f} MB peak), "
            f"convert {convert['cpu']:.1f} s ({convert['seconds']:.1f} s wall, "
            f"{convert['peak_mb']:.0f} MB peak), "
            f"ratio {convert['cpu'] / parse['cpu']:.1f}x",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, default=[ROOT / "tests" / "fixtures", CORPUS])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sizes", type=float, nargs="+", help="sizes in MB of concatenated corpus files")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per conversion (with --sizes)")
    parser.add_argument("--keep", type=Path, help="folder to write the concatenated files to (with --sizes)")
    parser.add_argument("--measure", nargs=2, metavar=("KIND", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        return measure(args.measure[0], Path(args.measure[1]))
    if args.sizes:
        return sizes(args.sizes, args.timeout, args.keep)
    from loopshift import convert_source

    files = sorted(
        f
        for p in args.paths
        for f in ([p] if p.is_file() else p.rglob("*.py"))
        if f.name not in ("expected.py",)
    )
    sources = [f.read_text() for f in files]
    lines = sum(s.count("\n") for s in sources)
    started = time.perf_counter()
    for _ in range(args.repeat):
        for source in sources:
            convert_source(source)
    seconds = (time.perf_counter() - started) / args.repeat
    print(
        f"{len(files)} files, {lines} lines: {seconds * 1000:.0f} ms per pass, "
        f"{len(files) / seconds:.0f} files/s, {lines / seconds:.0f} lines/s"
    )


if __name__ == "__main__":
    main()
