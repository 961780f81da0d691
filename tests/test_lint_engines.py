"""The ast engine (`run_rules`) against the libcst engine it replaces (`run_rules_cst`): the same
findings (code, message, span, fixable) and the same errors on every file of the dev corpus, the
project's fixtures, the rules' examples, and a fixed sample of the installed torch package."""

from __future__ import annotations

import importlib.util
import os
import re
import textwrap
from pathlib import Path

import pytest

from loopshift.diagnostics import Span
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
    sources = [
        textwrap.dedent(s)
        for rule in RULES
        for s in [*rule.VALID, *rule.INVALID, *(b for b, _ in rule.FIXED)]
    ]
    for number, source in enumerate(sources):
        assert outcome(run_rules, source, f"example{number}.py") == outcome(
            run_rules_cst, source, f"example{number}.py"
        )


@pytest.mark.slow  # the libcst engine on every file: minutes
def test_the_fixtures_find_the_same() -> None:
    files = [
        p
        for folder in ("fixtures", "fixtures_notebooks")
        for p in sorted((REPO / "tests" / folder).rglob("*.py"))
    ]
    assert files and differences(files) == []


@pytest.mark.skipif(not DEV_CORPUS.is_dir(), reason="no dev corpus here")
@pytest.mark.slow  # the libcst engine on every file: minutes
def test_the_dev_corpus_finds_the_same() -> None:
    files = list(python_files(DEV_CORPUS, DEV_CORPUS, ()))
    assert files and differences(files) == []


@pytest.mark.slow  # the libcst engine on every file: minutes
def test_a_sample_of_the_torch_package_finds_the_same() -> None:
    files = torch_sample()
    if not files:
        pytest.skip("torch is not installed")
    assert differences(files) == []


LIGHTNING_FINDINGS = """\
import lightning as L
import pytorch_lightning as pl
import torch


class LitModel(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch, batch_idx, optimizer_idx):
        loss = self.layer(batch).mean()
        self.log("train_loss", loss.item())
        return loss

    def training_epoch_end(self, outputs):
        pass


trainer = L.Trainer(gpus=1, max_epochs=3)
"""


RAW_LOOP = """\
import torch

model = torch.nn.Linear(4, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
for x, y in [(torch.randn(8, 4), torch.randn(8, 1))]:
    x, y = x.to(device), y.to(device)
    optimizer.zero_grad()
    torch.nn.functional.mse_loss(model(x), y).backward()
    optimizer.step()
"""


def lint_process(path: Path) -> tuple[list[str], str]:
    """The codes `loopshift lint path` reports, run as a pre-commit hook runs it, and its last
    line: the exit code and which heavy modules the process loaded."""
    import subprocess
    import sys

    script = textwrap.dedent(f"""\
        import sys
        import loopshift.cli
        code = loopshift.cli.main(["lint", {str(path)!r}])
        heavy = ("libcst", "torch", "lightning", "loopshift.convert")
        print(code, sorted(m for m in heavy if m in sys.modules))
        """)
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stderr
    return sorted(re.findall(r": (LS\d+) ", result.stdout)), result.stdout.strip().splitlines()[-1]


def test_a_raw_training_loop_is_linted_without_libcst(tmp_path: Path) -> None:
    path = tmp_path / "train.py"
    path.write_text(RAW_LOOP)
    assert lint_process(path) == (["LS101", "LS103", "LS103"], "1 []")


def test_a_file_with_findings_is_linted_without_libcst(tmp_path: Path) -> None:
    """Without --fix, rules decided on ast report findings with neither libcst nor torch loaded:
    the whole process, through the CLI, as a pre-commit hook runs it."""
    path = tmp_path / "lit.py"
    path.write_text(LIGHTNING_FINDINGS)
    assert lint_process(path) == (["LS204", "LS206", "LS207", "LS207", "LS208"], "1 []")
    # and the libcst engine finds the same
    assert outcome(run_rules, LIGHTNING_FINDINGS, str(path)) == outcome(
        run_rules_cst, LIGHTNING_FINDINGS, str(path)
    )


def inside(inner: Span, outer: Span) -> bool:
    return (outer.line, outer.column) <= (inner.line, inner.column) and (
        inner.end_line,
        inner.end_column,
    ) <= (
        outer.end_line,
        outer.end_column,
    )


def lost_by_ast(files: list[Path]) -> tuple[int, list[str]]:
    """The loops and device moves the analysis-based LS101 / LS102 / LS103 reported that the ast
    rules do not: a training loop counts as found when a reported loop holds the node analysis
    named, or lies in it (analysis sometimes named the `def` or the `backward()` line); an
    evaluation loop when it is reported; a move when one reported move lies in its span
    (libcst's span holds the parentheses around it). Also how many the analysis found."""
    from reference_rules import analysis_evaluation_loops, analysis_findings

    lost, checked = [], 0
    rules = [rule for rule in RULES if rule.code in ("LS101", "LS102", "LS103")]
    for path in files:
        try:
            source = read_source(path)
            old_loops, old_moves = analysis_findings(source, str(path))
            old_evaluations = analysis_evaluation_loops(source, str(path))
            _, kept, suppressed = run_rules(source, str(path), rules)
        except InputError:
            continue
        checked += len(old_loops) + len(old_moves) + len(old_evaluations)
        new = {
            code: [f.span for f in kept + suppressed if f.code == code]
            for code in ("LS101", "LS102", "LS103")
        }
        lost += [
            f"{path}:{old.line}: loop"
            for old in old_loops
            if not any(inside(old, span) or inside(span, old) for span in new["LS101"])
        ]
        lost += [f"{path}:{old.line}: evaluation loop" for old in old_evaluations if old not in new["LS102"]]
        lost += [
            f"{path}:{old.line}: move"
            for old in old_moves
            if not any(inside(span, old) for span in new["LS103"])
        ]
    return checked, lost


@pytest.mark.slow  # the converter's analysis on every file: minutes
def test_no_loop_or_move_the_analysis_found_is_lost() -> None:
    files = [
        *(python_files(DEV_CORPUS, DEV_CORPUS, ()) if DEV_CORPUS.is_dir() else []),
        *(
            p
            for folder in ("fixtures", "fixtures_notebooks")
            for p in sorted((REPO / "tests" / folder).rglob("*.py"))
        ),
        *torch_sample(),
    ]
    checked, lost = lost_by_ast(files)
    assert checked > 200 and lost == []
