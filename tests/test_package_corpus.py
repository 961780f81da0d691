"""Every .py file of the installed torch and lightning packages (thousands of real files, a few with
training loops): convert and lint never crash, every output parses, converting is idempotent, and
no file changes unless a loop was found.

The whole scan takes minutes and is marked `corpus` (and `slow`, so the fast tier leaves it out);
the fast tier checks the same on a fixed sample, every SAMPLE_EVERY-th file by sorted path."""

import importlib.util
from collections import Counter
from pathlib import Path

import pytest

from loopshift import InputError, convert_source, lint_source

PACKAGES = ["torch", "lightning"]
SAMPLE_EVERY = 50  # about 45 files of torch 2.13 and 5 of lightning


def package_files(name: str) -> list[Path]:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"{name} is not installed")
    return sorted(Path(next(iter(spec.submodule_search_locations))).rglob("*.py"))


def check_files(paths: list[Path]) -> Counter:
    counts = Counter()
    for path in paths:
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
    return counts


def report(capsys, label: str, counts: Counter) -> None:
    with capsys.disabled():
        print(f"\n{label}: " + ", ".join(f"{key} {value}" for key, value in counts.items()))


@pytest.mark.slow
@pytest.mark.corpus
@pytest.mark.parametrize("package", PACKAGES)
def test_converts_and_lints_every_file_of_a_real_package(package, capsys):
    counts = check_files(package_files(package))
    report(capsys, package, counts)
    assert counts["files"] > 100


@pytest.mark.parametrize("package", PACKAGES)
def test_converts_and_lints_a_sample_of_a_real_package(package, capsys):
    files = package_files(package)
    sample = files[::SAMPLE_EVERY]
    counts = check_files(sample)
    report(capsys, f"{package} (every {SAMPLE_EVERY}th file)", counts)
    assert len(files) > 100 and counts["files"] == len(sample) >= 5
