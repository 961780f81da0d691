"""The ast engine (`run_rules`) against the libcst engine it replaces (`run_rules_cst`): the same
findings (code, message, span, fixable) and the same errors on every file of the dev corpus, the
project's fixtures, the rules' examples, and a fixed sample of the installed torch package."""
from __future__ import annotations

import importlib.util
import os
import textwrap
from pathlib import Path

import pytest

from loopshift.lint.engine import run_rules, run_rules_cst
from loopshift.lint.files import python_files
from loopshift.lint.rules import RULES
from loopshift.source import InputError, read_source

REPO = Path(__file__).resolve().parent.parent
DEV_CORPUS = Path(os.environ.get("LOOPSHIFT_DEV_CORPUS", "/work/shared/dev-corpus"))
TORCH_SAMPLE = 200


def torch_sample(count: int = TORCH_SAMPLE) -> list[Path]:
    """Every n-th file of the installed torch package, in path order: the same files each run."""
    spec = importlib.util.find_spec("torch")  # found without importing it
    if spec is None or not spec.submodule_search_locations:
        return []
    folder = Path(next(iter(spec.submodule_search_locations)))
    files = sorted(p for p in python_files(folder, folder, ()) if p.suffix == ".py")
    return files[:: max(1, len(files) // count)][:count]


def outcome(engine, source: str, path: str):
    try:
        _, kept, suppressed = engine(source, path, RULES)
    except InputError as error:
        return ("error", str(error))
    return kept, suppressed


def differences(files: list[Path]) -> list[str]:
    found = []
    for path in files:
        try:
            source = read_source(path)
        except InputError:
            continue
        new, old = outcome(run_rules, source, str(path)), outcome(run_rules_cst, source, str(path))
        if new != old:
            found.append(f"{path}:\n  ast:    {new}\n  libcst: {old}")
    return found


def test_the_rules_examples_find_the_same() -> None:
    sources = [textwrap.dedent(s) for rule in RULES for s in [*rule.VALID, *rule.INVALID, *(b for b, _ in rule.FIXED)]]
    for number, source in enumerate(sources):
        assert outcome(run_rules, source, f"example{number}.py") == outcome(run_rules_cst, source, f"example{number}.py")


def test_the_fixtures_find_the_same() -> None:
    files = [p for folder in ("fixtures", "fixtures_notebooks") for p in sorted((REPO / "tests" / folder).rglob("*.py"))]
    assert files and differences(files) == []


@pytest.mark.skipif(not DEV_CORPUS.is_dir(), reason="no dev corpus here")
def test_the_dev_corpus_finds_the_same() -> None:
    files = list(python_files(DEV_CORPUS, DEV_CORPUS, ()))
    assert files and differences(files) == []


def test_a_sample_of_the_torch_package_finds_the_same() -> None:
    files = torch_sample()
    if not files:
        pytest.skip("torch is not installed")
    assert differences(files) == []
