"""Property tests: training loops drawn from a grammar of idioms (tests/loop_grammar.py) convert
into code that parses, converts to itself again, no longer trips the raw-loop lint rule and reads
no name it does not define; for a small sample, the converted script trains under fast_dev_run
with the original's losses.

Random draws (derandomized, no database: every run draws the same programs) are complemented by
a covering set with one program per (nesting, unpacking, zero_grad) shape, which a few dozen
draws do not all reach. A failure shows the generated source and its conversion.
"""
import builtins
import math
import symtable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis.control import currently_in_test_context

from loop_grammar import SHAPES, Program, programs, shaped
from loopshift.convert import convert_source
from loopshift.lint import lint_source

RAW_LOOP = "LS101"  # manual-training-loop

FAST = settings(max_examples=50, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])


def convert(source: str):
    return convert_source(source, target="lightning", path="gen.py")


def show(text: str) -> None:
    """Shown with a failure: as a hypothesis note under @given, else in pytest's captured stdout."""
    if currently_in_test_context():
        note(text)
    else:
        print(text)


def lint_codes(source: str) -> set[str]:
    return {finding.code for finding in lint_source(source, path="gen.py")}


def undefined_globals(source: str) -> set[str]:
    """Names read as globals (at module level or from any function or class) that the module never
    binds and that are not builtins: each one is a NameError waiting for the line that reads it."""
    module = symtable.symtable(source, "gen.py", "exec")
    known = set(dir(builtins)) | {s.get_name() for s in module.get_symbols()
                                  if s.is_assigned() or s.is_imported() or s.is_namespace()}
    missing = {s.get_name() for s in module.get_symbols() if s.is_referenced() and s.get_name() not in known}
    tables = list(module.get_children())
    while tables:
        table = tables.pop()
        missing |= {s.get_name() for s in table.get_symbols()
                    if s.is_referenced() and s.is_global() and s.get_name() not in known}
        tables.extend(table.get_children())
    return missing


# -- the checks -----------------------------------------------------------------------------
def check_input(p: Program) -> str:
    """The input side of every property: valid Python, every name defined, and an LS101 finding
    (so that its absence after conversion means something)."""
    source = p.render()
    show(source)
    compile(source, "gen.py", "exec")
    assert undefined_globals(source) == set()
    assert RAW_LOOP in lint_codes(source)
    return source


def check_conversion(p: Program, source: str):
    """Converts without raising, to code that parses and converts to itself again; the loop is
    converted, or (the one unsupported shape of the grammar) refused with LS001."""
    result = convert(source)
    show(result.code)
    compile(result.code, "converted.py", "exec")
    if p.convertible:
        assert result.loops_converted == 1 and result.diagnostics == [], \
            [d.render("gen.py") for d in result.diagnostics]
        assert "trainer.fit(" in result.code and ".backward()" not in result.code
    else:  # the train function is called inside an f-string: a documented limitation
        assert result.loops_converted == 0
        assert [d.code for d in result.diagnostics] == ["LS001"]
        assert "called exactly once, as a statement" in result.diagnostics[0].render("gen.py")
    assert convert(result.code).code == result.code
    return result


def check_output(p: Program, code: str) -> None:
    """A converted loop is no raw loop any more, and the code reads no name it does not define."""
    if not p.convertible:
        assert RAW_LOOP in lint_codes(code)  # left as it was, under a TODO comment
        return
    assert RAW_LOOP not in lint_codes(code)
    assert undefined_globals(code) == set()


# -- properties over random draws -----------------------------------------------------------
@FAST
@given(programs())
def test_generated_program_is_a_raw_training_loop(p: Program) -> None:
    check_input(p)


@FAST
@given(programs())
def test_conversion_parses_and_is_idempotent(p: Program) -> None:
    for choice in ("nesting", "unpacking", "zero_grad"):  # shown by --hypothesis-show-statistics
        event(choice, getattr(p, choice))
    source = p.render()
    show(source)
    check_conversion(p, source)


@FAST
@given(programs())
def test_converted_code_is_no_raw_loop_and_defines_what_it_reads(p: Program) -> None:
    source = p.render()
    show(source)
    check_output(p, convert(source).code)


# -- every shape once ------------------------------------------------------------------------
@pytest.mark.parametrize("k", range(len(SHAPES)), ids=["-".join(shape) for shape in SHAPES])
def test_every_shape_converts(k: int) -> None:
    """Each (nesting, unpacking, zero_grad) of the grammar, which a few dozen random draws do not
    all reach: all three checks on one deterministic program per shape."""
    p = shaped(k)
    result = check_conversion(p, check_input(p))
    check_output(p, result.code)


MANUAL_OPTIMIZATION_RENAMED_OPTIMIZER = '''\
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)


def train(model, loader, optimizer, criterion):
    for x, y in loader:
        model.zero_grad()
        out = model(x)
        loss = criterion(out, y)
        loss.backward()
        optimizer.step()


def main():
    X = torch.randn(32, 8)
    Y = torch.randint(0, 3, (32,))
    loader = DataLoader(TensorDataset(X, Y), batch_size=8, shuffle=False)
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    criterion = nn.CrossEntropyLoss()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)

    for epoch in range(2):
        train(net, loader, opt, criterion)


if __name__ == "__main__":
    main()
'''


def test_renamed_model_and_optimizer_in_a_function_convert_without_undefined_names() -> None:
    """Found by the properties: `model.zero_grad()` through a parameter named unlike the caller's `net`
    fell back to manual optimization, which unpacked `self.optimizers()` as the caller's `opt` while the
    step said `optimizer.step()` (a NameError)."""
    result = convert(MANUAL_OPTIMIZATION_RENAMED_OPTIMIZER)
    assert result.loops_converted == 1 and result.diagnostics == []
    assert "self.automatic_optimization = False" not in result.code  # model.zero_grad() clears opt's gradients
    assert undefined_globals(MANUAL_OPTIMIZATION_RENAMED_OPTIMIZER) == set()
    assert undefined_globals(result.code) == set()
    manual = convert(MANUAL_OPTIMIZATION_RENAMED_OPTIMIZER.replace(
        "        optimizer.step()", "        if loss.item() > 0:\n            optimizer.step()"))
    assert "self.automatic_optimization = False" in manual.code  # a conditional step: manual optimization
    assert "optimizer = self.optimizers()" in manual.code and undefined_globals(manual.code) == set()


# -- training -----------------------------------------------------------------------------
def check_training(tmp_path: Path, p: Program) -> None:
    """The converted script trains under fast_dev_run, with the original's losses step for step."""
    from loopshift.verify import verify  # runs both scripts in subprocesses, with OMP_NUM_THREADS=1

    source = p.render()
    show(source)
    original, converted = tmp_path / "original.py", tmp_path / "converted.py"
    original.write_text(source)
    conversion = convert(source)
    assert conversion.loops_converted == 1 and "trainer.fit(" in conversion.code
    converted.write_text(conversion.code)
    # 4 to 8 batches an epoch: ten steps cross an epoch boundary, where per-epoch code runs, when
    # there are two epochs (and end early, with the data, when there is one)
    result = verify(converted, original=original, steps=10, timeout=240)
    assert result.ok, f"{result.message}\n{result.error}\n{result.output}"
    assert "train" in result.stages
    assert result.losses and all(math.isfinite(loss) for loss in result.losses)
    assert len(result.losses) == len(result.original_losses) >= 4
    assert result.max_abs_diff is not None and result.max_abs_diff <= 1e-5 * max(map(abs, result.original_losses))


@pytest.mark.slow
@settings(max_examples=4, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(programs().filter(lambda p: p.convertible))
def test_converted_program_trains_with_the_original_losses(tmp_path: Path, p: Program) -> None:
    for choice in ("nesting", "unpacking", "zero_grad"):
        event(choice, getattr(p, choice))
    check_training(tmp_path, p)


# fixed shapes, so that every nesting and zero_grad position trains whatever the draws above are:
# a train function whose running total main() prints across an epoch boundary, and zero_grad after
# the step in main() and in a single pass
TRAINED_SHAPES = [("function", "batch", "before_forward"), ("main", "batch", "after_step"),
                  ("single", "pair", "after_step")]


@pytest.mark.slow
@pytest.mark.parametrize("shape", TRAINED_SHAPES, ids=["-".join(shape) for shape in TRAINED_SHAPES])
def test_shaped_program_trains_with_the_original_losses(tmp_path: Path, shape) -> None:
    check_training(tmp_path, shaped(SHAPES.index(shape)))
