"""Every .py file of the installed torch and lightning packages (thousands of real files, a few with
training loops): convert and lint never crash, every output parses, converting is idempotent, and
no file changes unless a loop was found."""
import importlib.util
from collections import Counter
from pathlib import Path

import pytest

from loopshift import InputError, convert_source, lint_source

pytestmark = pytest.mark.slow


def package_files(name: str) -> list[Path]:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"{name} is not installed")
    return sorted(Path(next(iter(spec.submodule_search_locations))).rglob("*.py"))


@pytest.mark.parametrize("package", ["torch", "lightning"])
def test_converts_and_lints_every_file_of_a_real_package(package, capsys):
    counts = Counter()
    for path in package_files(package):
        source = path.read_text(encoding="utf-8", errors="replace")
        counts["files"] += 1
        try:
            result = convert_source(source, path=str(path))
        except InputError:  # not Python this interpreter parses (a template, Python 2)
            counts["unparsable"] += 1
            continue
        lint_source(source, path=str(path))
        counts["loops found"] += result.loops_found
        counts["loops converted"] += result.loops_converted
        if result.code != source:
            assert result.loops_found, f"{path} changed without a training loop"
            counts["files changed"] += 1
            again = convert_source(result.code, path=str(path))
            assert again.code == result.code, f"{path}: converting the output changes it again"
    with capsys.disabled():
        print(f"\n{package}: " + ", ".join(f"{key} {value}" for key, value in counts.items()))
    assert counts["files"] > 100
