"""`loopshift convert --report report.json`: what happened to each file, as JSON (the conversion
rate that migration tools report, with every diagnostic that explains a TODO)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .output import write_atomic

if TYPE_CHECKING:
    from .convert import Result


def file_entry(
    path: Path, outcome: str, result: Result | None = None, error: str | None = None
) -> dict[str, Any]:
    entry: dict[str, object] = {"path": str(path), "outcome": outcome}
    if result is not None:
        entry |= {
            "loops_found": result.loops_found,
            "loops_converted": result.loops_converted,
            "diagnostics": [
                {
                    "code": d.code,
                    "message": d.message,
                    "line": d.span.line,
                    "column": d.span.column + 1,
                    **({"cell": d.cell} if d.cell else {}),
                }
                for d in result.diagnostics
            ],
        }
    if error is not None:
        entry["error"] = error
    return entry


def write_report(destination: Path, entries: list[dict[str, Any]]) -> None:
    outcomes = Counter(entry["outcome"] for entry in entries)
    reasons = Counter(d["code"] for entry in entries for d in entry.get("diagnostics", []))
    summary = {
        "files_scanned": len(entries),
        "with_training_loops": outcomes["clean"] + outcomes["todo"],
        "converted_cleanly": outcomes["clean"],
        "converted_with_todos": outcomes["todo"],
        "failed": outcomes["failed"],
        "loops_found": sum(entry.get("loops_found", 0) for entry in entries),
        "loops_converted": sum(entry.get("loops_converted", 0) for entry in entries),
        "diagnostics_by_code": dict(sorted(reasons.items())),
    }
    write_atomic(destination, json.dumps({"summary": summary, "files": entries}, indent=2) + "\n")
