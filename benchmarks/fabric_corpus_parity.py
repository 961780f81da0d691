"""Every script of the dev corpus converts to Lightning Fabric and computes the original's losses.

Copies the corpus (read-only, never converted in place) to a temporary folder, runs
`convert --target fabric` on each script and `verify --original --steps K` on the result, and
prints one line per script; exits 1 when one fails.

    OMP_NUM_THREADS=1 python benchmarks/fabric_corpus_parity.py [CORPUS] [--steps 20]
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from loopshift import convert_source
from loopshift.verify import verify

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", type=Path, default=ROOT.parent / "shared" / "dev-corpus")
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    failures = 0
    with tempfile.TemporaryDirectory(prefix="loopshift-fabric-corpus-") as folder:
        copy = Path(folder) / "corpus"
        shutil.copytree(args.corpus, copy)
        scripts = sorted(p for p in copy.rglob("*.py") if p.name != "models.py")  # two_file_cnn's model module
        for script in scripts:
            started = time.perf_counter()
            result = convert_source(script.read_text(), target="fabric", path=str(script))
            converted = script.with_name(f"{script.stem}_fabric.py")
            converted.write_text(result.code)
            outcome = verify(converted, original=script, steps=args.steps, timeout=300)
            failures += not outcome.ok or bool(result.diagnostics)
            status = "PASS" if outcome.ok and not result.diagnostics else "FAIL"
            print(f"{status} {script.relative_to(copy)}: {outcome.message}; {len(result.diagnostics)} TODOs "
                  f"({time.perf_counter() - started:.1f} s)", flush=True)
    print(f"{len(scripts) - failures}/{len(scripts)} scripts convert to Fabric with parity")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
