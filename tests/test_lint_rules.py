"""Every rule's examples are its tests: VALID, INVALID, FIXED and the code in its documentation.
Plus the registry's invariants, and the proof that skipping unparsed files hides no finding."""

import re
import textwrap
from pathlib import Path

import pytest

from loopshift.lint import RULES
from loopshift.lint.engine import fix_source, run_rules
from loopshift.lint.rule import Context
from loopshift.source import parse_module

FIXTURES = Path(__file__).parent / "fixtures"
SECTIONS = ["What it does", "Why is this bad?", "Example", "Use instead"]
CODE_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def examples(kind: str):
    return [
        pytest.param(rule, textwrap.dedent(code), id=f"{rule.code}-{i}")
        for rule in RULES
        for i, code in enumerate(getattr(rule, kind))
    ]


def codes_found(rule, source: str) -> list[str]:
    return [finding.code for finding in run_rules(source, "example.py", [rule])[1]]


@pytest.mark.parametrize("rule, source", examples("VALID"))
def test_valid_examples_pass(rule, source: str) -> None:
    assert rule.code not in codes_found(rule, source)


@pytest.mark.parametrize("rule, source", examples("INVALID"))
def test_invalid_examples_are_reported(rule, source: str) -> None:
    assert rule.code in codes_found(rule, source)


@pytest.mark.parametrize(
    "rule, before, after",
    [
        pytest.param(rule, textwrap.dedent(before), textwrap.dedent(after), id=f"{rule.code}-{i}")
        for rule in RULES
        for i, (before, after) in enumerate(rule.FIXED)
    ],
)
def test_fixes_give_the_expected_code_and_settle(rule, before: str, after: str) -> None:
    assert rule.code in codes_found(rule, before)
    fixed, remaining, counts = fix_source(before, "example.py", [rule])
    assert fixed == after
    assert counts[rule.code] >= 1 and not any(f.fixable for f in remaining)
    assert fix_source(after, "example.py", [rule])[0] == after  # a second pass changes nothing


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.code)
def test_documentation_examples(rule) -> None:
    """The docs' Example is reported and their Use instead is not."""
    sections = rule.sections()
    for block in CODE_BLOCK.findall(sections["Example"]):
        assert rule.code in codes_found(rule, block)
    for block in CODE_BLOCK.findall(sections["Use instead"]):
        assert rule.code not in codes_found(rule, block)


def test_registry() -> None:
    assert [rule.code for rule in RULES] == sorted({rule.code for rule in RULES})
    assert len({rule.name for rule in RULES}) == len(RULES)
    for rule in RULES:
        assert re.fullmatch(r"LS[12]\d\d", rule.code), rule.code
        assert re.fullmatch(r"[a-z]+(-[a-z0-9]+)*", rule.name), rule.name
        # one module per rule, named after it: manual-training-loop -> manual_training_loop.ManualTrainingLoop
        assert type(rule).__module__.rsplit(".", 1)[1] == rule.name.replace("-", "_")
        assert type(rule).__name__ == rule.name.title().replace("-", "")
        assert list(rule.sections())[:4] == SECTIONS, rule.code
        assert all(CODE_BLOCK.search(rule.sections()[title]) for title in ("Example", "Use instead")), (
            rule.code
        )
        assert rule.summary and "\n" not in rule.summary
        assert rule.VALID and rule.INVALID, rule.code
        # a fixable rule shows its fix; LS101's fix is the conversion, tested on a fixture in test_lint.py
        assert rule.fixable == bool(rule.FIXED) or rule.code == "LS101", rule.code


# Findings at the edges of what `needs` lets through: spellings a careless text pattern would skip.
EDGES = [
    (
        "LS101",
        """
        import torch

        def train(model, loader, optimizer):
            for x, y in loader:
                optimizer.zero_grad()
                (model(x) - y).pow(2).mean() \\
                    .backward()
                optimizer.step()
        """,
    ),
    (
        "LS101",
        """
        import torch

        def train(model, loader, optimizer):
            for x, y in loader:
                optimizer.zero_grad()
                (model(x).sum().  # a comment between the dot and the name
                 backward())
                optimizer.step()
        """,
    ),
    (
        "LS102",
        """
        import torch

        def evaluate(model, VAL_LOADER):
            with torch.no_grad():
                for x, y in VAL_LOADER:
                    model(x)
        """,
    ),
    (
        "LS203",
        """
        import lightning as L

        class LitModel(L.LightningModule):
            def setup(self, stage):
                self.table = self.table.to("\\x63uda")
        """,
    ),
    (
        "LS205",
        """
        import lightning as L

        class LitModel(L.LightningModule):
            def training_step(self, batch, batch_idx):
                trainLoss = self(batch).mean()
        """,
    ),
    (
        "LS205",
        """
        import lightning as L

        class LitModel(L.LightningModule):
            def training_step(self, batch, batch_idx):
                self.log("train_\\x6coss", self(batch).mean())
        """,
    ),
]


@pytest.mark.parametrize(
    "code, source",
    [pytest.param(code, textwrap.dedent(source), id=f"{code}-{i}") for i, (code, source) in enumerate(EDGES)],
)
def test_findings_at_the_edges_of_needs_are_reported(code: str, source: str) -> None:
    """run_rules reads `needs` first: a pattern too narrow for one of these loses its finding."""
    [rule] = [rule for rule in RULES if rule.code == code]
    assert code in codes_found(rule, source)


def all_sources():
    for code, source in EDGES:
        yield f"{code} edge", textwrap.dedent(source)
    for rule in RULES:
        for code in [*rule.VALID, *rule.INVALID, *(before for before, _ in rule.FIXED)]:
            yield f"{rule.code} example", textwrap.dedent(code)
        for block in CODE_BLOCK.findall(rule.docs()):
            yield f"{rule.code} docs", block
    for path in sorted(FIXTURES.glob("*/input.py")):
        yield str(path), path.read_text()


@pytest.mark.slow  # seconds of CPU: in the full run, not the fast tier
def test_skipping_files_by_their_text_never_hides_a_finding() -> None:
    """The engine parses a file for a rule only when the text matches the rule's `needs`.
    Here every rule checks every source anyway: whatever it finds, `needs` must have let through."""
    for name, source in all_sources():
        context = Context(source, name, parse_module(source, name))
        for rule in RULES:
            if list(rule.check(context)):
                assert rule.could_match(source), f"{rule.code} `needs` would hide its finding in {name}"


def test_a_positional_trainer_argument_is_read_as_its_value() -> None:
    """`Trainer(logger, gpus=1)`: the ast engine read `.value` off the positional argument, an
    ast.Name, and the file could not be linted (AttributeError); both engines find the gpus."""
    from loopshift.lint.engine import run_rules_cst

    [rule] = [rule for rule in RULES if rule.code == "LS206"]
    source = "from lightning.pytorch import Trainer\n\nlogger = None\nTrainer(logger, gpus=1)\n"
    assert codes_found(rule, source) == ["LS206"]
    assert [finding.code for finding in run_rules_cst(source, "example.py", [rule])[1]] == ["LS206"]
