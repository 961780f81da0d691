"""Every script of the dev corpus converts and computes the original's losses.

Copies the corpus (read-only, never converted in place) to a temporary folder, converts each
script with the chosen target and runs `verify --original --steps K` on the result. One line per
script: PASS (parity, no TODO), TODO (the conversion said why it is incomplete), SILENT (parity
failed and no diagnostic says why: the one outcome that must never happen) or NONE (no loop
found). Exits 1 when a script is SILENT.

    OMP_NUM_THREADS=1 python benchmarks/corpus_parity.py [CORPUS] [--target lightning] [--steps 20]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from loopshift import convert_source
from loopshift.verify import verify

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", type=Path, default=ROOT.parent / "shared" / "dev-corpus")
    parser.add_argument("--target", default="lightning", choices=["lightning", "fabric", "auto"])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("-k", dest="only", default="", help="only scripts whose name contains this")
    args = parser.parse_args()
    outcomes: Counter[str] = Counter()
    with tempfile.TemporaryDirectory(prefix="loopshift-corpus-") as folder:
        copy = Path(folder) / "corpus"
        shutil.copytree(args.corpus, copy)
        # Model modules of the two-file projects are imported, not run.
        scripts = sorted(
            p for p in copy.rglob("*.py") if p.name not in {"models.py", "trainer.py"} and args.only in p.name
        )
        for script in scripts:
            started = time.perf_counter()
            result = convert_source(script.read_text(), target=args.target, path=str(script))
            codes = ",".join(sorted({d.code for d in result.diagnostics}))
            if result.code == script.read_text():
                status, message = "NONE", "unchanged"
            else:
                converted = script.with_name(f"{script.stem}_converted.py")
                converted.write_text(result.code)
                outcome = verify(converted, original=script, steps=args.steps, timeout=300)
                message = outcome.message
                status = "PASS" if outcome.ok and not codes else "TODO" if codes else "SILENT"
            outcomes[status] += 1
            elapsed = time.perf_counter() - started
            print(
                f"{status:6} {script.relative_to(copy)}: {message} [{codes or 'no diagnostics'}] "
                f"({elapsed:.1f} s)",
                flush=True,
            )
    print(
        ", ".join(f"{n} {status}" for status, n in sorted(outcomes.items())),
        f"of {len(scripts)} ({args.target})",
    )
    return 1 if outcomes["SILENT"] else 0


if __name__ == "__main__":
    sys.exit(main())
