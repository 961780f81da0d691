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
from loopshift.core import Result
from loopshift.project import local_imports, trains
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
            converted = script.with_name(f"{script.stem}_converted.py")
            if result.code == script.read_text() and not result.loops_found:
                # its loop lives in a module it imports (convert follows the import): the pair,
                # converted in a copy of the folder, against the original pair
                result, converted = convert_imported(script, args.target)
            codes = ",".join(sorted({d.code for d in result.diagnostics}))
            if result.code == script.read_text() and converted is None:
                status, message = "NONE", "unchanged"
            else:
                if converted.name.endswith("_converted.py"):
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


def convert_imported(script: Path, target: str):
    """The script's local imports that train, converted in a copy of its folder: the combined
    result and the copy of the script (None when no import trains)."""
    folder = script.parent.with_name(f"{script.parent.name}_converted")
    modules = [i for i in local_imports(script, script.read_text()) if trains(i.file)]
    if not modules:
        return convert_source(script.read_text(), target=target), None
    shutil.copytree(script.parent, folder, dirs_exist_ok=True)
    combined = Result(script.read_text())
    for imported in modules:
        copy = folder / imported.file.relative_to(script.parent)
        result = convert_source(copy.read_text(), target=target, path=str(imported.file))
        copy.write_text(result.code)
        combined.diagnostics += result.diagnostics
        combined.loops_found += result.loops_found
        combined.loops_converted += result.loops_converted
    return combined, folder / script.name


if __name__ == "__main__":
    sys.exit(main())
