"""Property tests: training loops drawn from a grammar of idioms (tests/loop_grammar.py) convert
into code that parses, converts to itself again, no longer trips the raw-loop lint rule and reads
no name it does not define; the idioms of the optimization step (clipping, schedulers, in-place
zero_grad, mixed precision, gradient accumulation) land where README's table says; for a small
sample, the converted script trains under fast_dev_run with the original's losses.

Random draws (derandomized, no database: every run draws the same programs) are complemented by
a covering set with one program per (nesting, unpacking, zero_grad) shape, which a few dozen
draws do not all reach, and which holds every pair of the step's idioms too. A failure shows the
generated source and its conversion.
"""

import itertools
import math
import symtable
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis.control import currently_in_test_context
from loop_grammar import (
    PER_EPOCH_SCHEDULERS,
    PRINTED,
    SHAPES,
    STEP_FACTORS,
    Program,
    idiom_pairs,
    programs,
    shaped,
    supported,
)

from loopshift.checks import undefined_names
from loopshift.convert import convert_source
from loopshift.lint import lint_source

RAW_LOOP = "LS101"  # manual-training-loop

STEP_CHOICES = (
    "nesting",
    "unpacking",
    "zero_grad",
    "zero_grad_argument",
    "clip",
    "scheduler",
    "amp",
    "accumulation",
)

# max_examples comes from the hypothesis profile tests/conftest.py loads: 50, or 10 in the fast tier
FAST = settings(deadline=None, database=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


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
    """Names read as globals that the module never binds and that are not builtins: each one is a
    NameError waiting for the line that reads it (the converter's own output check)."""
    return undefined_names(source, "gen.py")


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
    converted (with exactly the diagnostics the program expects: LS007 for accumulation that does
    not step on an epoch's last batch, none otherwise) and its step's idioms as README says, or
    (the one unsupported shape of the grammar) refused with LS001."""
    result = convert(source)
    show(result.code)
    compile(result.code, "converted.py", "exec")
    if p.convertible:
        assert result.loops_converted == 1
        assert [d.render("gen.py") for d in result.diagnostics] == p.diagnostics
        for diagnostic in result.diagnostics:  # LS007: the TODO sits above the Trainer it is about
            message = diagnostic.render("gen.py").split(f" {diagnostic.code} ", 1)[1]
            assert f"# TODO(loopshift): {message} ({diagnostic.code})\n" in result.code
        assert "trainer.fit(" in result.code and ".backward()" not in result.code
        check_step_idioms(p, result.code)
    else:  # the train function is called inside an f-string: a documented limitation
        assert result.loops_converted == 0
        assert [d.code for d in result.diagnostics] == ["LS001"]
        assert "called exactly once, as a statement" in result.diagnostics[0].render("gen.py")
    assert convert(result.code).code == result.code
    return result


def trainer_call(code: str) -> str:
    [line] = [line for line in code.splitlines() if "trainer = L.Trainer(" in line]
    return line


def check_step_idioms(p: Program, code: str) -> None:
    """Each idiom of the optimization step is converted as README's table says, and only where the
    script has it."""
    n, o = p.names, p.outer  # o: the names of the setup (main's, for a per-epoch function)
    trainer = trainer_call(code)
    # clipping: the Trainer's gradient_clip_val, or the user's statement in configure_gradient_clipping
    if p.clip is None:
        assert "gradient_clip" not in code and "clip_grad" not in code
    else:
        value = p.clip_threshold
        option = f"gradient_clip_val={value}" + (
            ', gradient_clip_algorithm="value"' if p.clip == "value" else ""
        )
        custom = "    def configure_gradient_clipping(self, optimizer" in code
        assert (option in trainer) != custom, trainer
        assert code.count(f"clip_grad_{p.clip}_(") == int(custom)
        if custom:
            assert f"{p.clip_module}.clip_grad_{p.clip}_(self.model.parameters(), {value})" in code
    # the scheduler: configure_optimizers returns it with its interval, and nothing steps it by hand
    if p.scheduler is None:
        assert '"lr_scheduler":' not in code
    else:
        interval = "epoch" if p.scheduler in PER_EPOCH_SCHEDULERS else "step"
        assert f'"lr_scheduler": {{"scheduler": {o.scheduler}, "interval": "{interval}"}}}}' in code
        assert f"{o.scheduler}.step()" not in code and f"{n.scheduler}.step()" not in code
    # zero_grad(set_to_none=False): an optimizer_zero_grad override that zeroes in place
    overrides = (
        "    def optimizer_zero_grad(self, epoch, batch_idx, optimizer):\n"
        "        optimizer.zero_grad(set_to_none=False)"
    )
    assert (overrides in code) == (p.zero_grad_argument == "set_to_none=False")
    assert ".zero_grad()" not in code and ".zero_grad(set_to_none=True)" not in code
    # mixed precision: the Trainer's precision, chosen by the script's flag; no autocast or scaler left
    if p.amp is None:
        assert "precision=" not in trainer
    else:
        assert 'precision="16-mixed" if use_amp else "32-true"' in trainer
        assert "use_amp = torch.cuda.is_available()" in code
        for gone in (
            "autocast",
            "GradScaler",
            ".scale(",
            "unscale_",
            ".update()",
            f"{n.scaler}",
            f"{o.scaler}",
        ):
            assert gone not in code, gone
    # accumulation: the Trainer's accumulate_grad_batches, the division and the condition go
    if p.accumulation is None:
        assert "accumulate_grad_batches" not in code
    else:
        assert f"accumulate_grad_batches={p.accumulates}" in trainer
        for gone in (
            f"{n.loss} = {n.loss} / {p.accumulates}",
            f"/= {p.accumulates}",
            f"+ 1) % {p.accumulates} == 0",
        ):
            assert gone not in code, gone
        if p.running_total:  # the total summed the divided loss: it still does
            assert f"+= ({n.loss} / {p.accumulates}).item()" in code


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
    assert supported(p)
    check_input(p)


@FAST
@given(programs())
def test_conversion_parses_and_is_idempotent(p: Program) -> None:
    for choice in STEP_CHOICES:  # shown by --hypothesis-show-statistics
        event(choice, str(getattr(p, choice)))
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
    assert supported(p)
    result = check_conversion(p, check_input(p))
    check_output(p, result.code)


def test_covering_set_holds_every_pair_of_step_idioms() -> None:
    """The covering set holds every pair of values of two of the step's idioms (clipping, scheduler,
    mixed precision, accumulation, zero_grad's argument) that the grammar generates on some shape,
    so that test_every_shape_converts checks each pair; and each of its programs is one the grammar
    generates."""
    programs_ = [shaped(k) for k in range(len(SHAPES))]
    assert all(supported(p) for p in programs_)
    held = set().union(*(idiom_pairs({f: getattr(p, f) for f in STEP_FACTORS}) for p in programs_))
    generated = set()
    for values in itertools.product(*STEP_FACTORS.values()):
        idioms = dict(zip(STEP_FACTORS, values))
        if any(supported(replace(p, **idioms)) for p in programs_):
            generated |= idiom_pairs(idioms)
    assert held == generated
    assert ("amp", "amp", "accumulation", "every") in generated
    assert ("clip", "norm", "accumulation", "every_or_last") in generated


MANUAL_OPTIMIZATION_RENAMED_OPTIMIZER = """\
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
"""


def test_renamed_model_and_optimizer_in_a_function_convert_without_undefined_names() -> None:
    """Found by the properties: `model.zero_grad()` through a parameter named unlike the caller's `net`
    fell back to manual optimization, which unpacked `self.optimizers()` as the caller's `opt` while the
    step said `optimizer.step()` (a NameError)."""
    result = convert(MANUAL_OPTIMIZATION_RENAMED_OPTIMIZER)
    assert result.loops_converted == 1 and result.diagnostics == []
    assert (
        "self.automatic_optimization = False" not in result.code
    )  # model.zero_grad() clears opt's gradients
    assert undefined_globals(MANUAL_OPTIMIZATION_RENAMED_OPTIMIZER) == set()
    assert undefined_globals(result.code) == set()
    manual = convert(
        MANUAL_OPTIMIZATION_RENAMED_OPTIMIZER.replace(
            "        optimizer.step()", "        if loss.item() > 0:\n            optimizer.step()"
        )
    )
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
    assert result.max_abs_diff is not None and result.max_abs_diff <= 1e-5 * max(
        map(abs, result.original_losses)
    )


@pytest.mark.slow
@settings(
    max_examples=4,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(programs().filter(lambda p: p.trains_alike))
def test_converted_program_trains_with_the_original_losses(tmp_path: Path, p: Program) -> None:
    for choice in STEP_CHOICES:
        event(choice, str(getattr(p, choice)))
    check_training(tmp_path, p)


# fixed shapes, so that every nesting and zero_grad position trains whatever the draws above are:
# a train function whose running total main() prints across an epoch boundary, and zero_grad after
# the step in main() and in a single pass; the step's idioms as the covering set rotates them in
TRAINED_SHAPES = [
    ("function", "batch", "before_forward"),
    ("main", "batch", "after_step"),
    ("single", "pair", "after_step"),
]


@pytest.mark.slow
@pytest.mark.parametrize("shape", TRAINED_SHAPES, ids=["-".join(shape) for shape in TRAINED_SHAPES])
def test_shaped_program_trains_with_the_original_losses(tmp_path: Path, shape) -> None:
    check_training(tmp_path, shaped(SHAPES.index(shape)))


# and each idiom of the step, whatever the draws: two epochs of 4 or 6 batches, so that the steps
# compared cross an epoch's end (a per-epoch scheduler step, an accumulation group cut short by
# it), with thresholds that do clip (a clipping lost or misplaced changes the losses)
TRAINED_STEPS = {
    # disabled mixed precision, unscale_ then norm clipping, OneCycleLR every batch, in a train function
    "amp-unscale-clip_norm-onecycle": (
        ("function", "pair", "before_forward"),
        dict(
            amp="amp",
            autocast='torch.autocast(device_type="cuda", enabled=use_amp)',
            clip="norm",
            tight_clip=True,
            scheduler="OneCycleLR",
            zero_grad_argument="set_to_none=False",
            epochs=2,
            samples=32,
        ),
    ),
    # the other scaler, value clipping and StepLR once an epoch, in main()
    "cuda_amp-clip_value-steplr": (
        ("main", "batch", "before_backward"),
        dict(
            amp="cuda.amp",
            autocast="torch.cuda.amp.autocast(enabled=use_amp)",
            clip="value",
            tight_clip=True,
            scheduler="StepLR",
            epochs=2,
            samples=32,
        ),
    ),
    # accumulating 4 of 6 batches an epoch, stepping on the last one too: groups of 4 and 2
    "accumulate_or_last-clip_norm-steplr": (
        ("module", "enumerate", "after_step"),
        dict(
            accumulation="every_or_last",
            accum_steps=4,
            accum_name="ACCUM",
            clip="norm",
            tight_clip=True,
            scheduler="StepLR",
            epochs=2,
            samples=48,
            zero_grad_argument="set_to_none=False",
        ),
    ),
    # accumulating 2 of 4 batches with no last-batch step: LS007, and yet the same steps
    "accumulate-lambdalr": (
        ("main", "enumerate_index", "after_step"),
        dict(
            accumulation="every",
            accum_steps=2,
            accum_name=None,
            division="augmented",
            clip=None,
            scheduler="LambdaLR",
            epochs=2,
            samples=32,
        ),
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", TRAINED_STEPS)
def test_step_idioms_train_with_the_original_losses(tmp_path: Path, case: str) -> None:
    shape, idioms = TRAINED_STEPS[case]
    p = replace(shaped(SHAPES.index(shape)), **idioms)
    assert supported(p) and p.trains_alike
    check_training(tmp_path, p)


# -- after the loop -------------------------------------------------------------------------
# programs(after=True): the loop's variables and a rebound name read after it, a checkpoint written
# each epoch and reopened after training, user names the conversion also introduces, an evaluation
# with keyword defaults. A conversion may answer with a diagnostic (a TODO); one without is correct.
AFTER = settings(
    max_examples=8,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


def reported_undefined(result) -> set[str]:
    """The names LS010 diagnostics say the converted code reads without defining."""
    return {d.message.split("`")[1] for d in result.diagnostics if d.code == "LS010"}


def check_after_conversion(p: Program):
    """Converts without raising into code that compiles and converts to itself again, and reads no
    undefined name but those an LS010 reports; with no diagnostic at all, the loop is converted,
    is no raw loop any more and every name it reads is defined."""
    source = check_input(p)
    result = convert(source)
    show(result.code)
    show("diagnostics: " + "; ".join(d.render("gen.py") for d in result.diagnostics))
    compile(result.code, "converted.py", "exec")
    assert undefined_globals(result.code) <= reported_undefined(result)
    assert convert(result.code).code == result.code
    if not result.diagnostics:
        assert result.loops_converted == 1 and "trainer.fit(" not in source
        assert RAW_LOOP not in lint_codes(result.code)
        assert undefined_globals(result.code) == set()
    return result


@AFTER
@given(programs(after=True))
def test_code_after_the_loop_converts_or_is_reported(p: Program) -> None:
    for choice in ("nesting", "unpacking", "evaluation", "collision", "note", "checkpoint"):
        event(choice, str(getattr(p, choice)))
    event("after_reads", ",".join(p.after_reads))
    check_after_conversion(p)


def printed_lines(script: Path, cwd: Path) -> list[str]:
    """The lines a whole run prints that the grammar's prints begin (Lightning's banner, summary and
    progress bar left out; a progress bar that shares a line with a print is cut off), but the
    per-batch prints of the loss, which README's table says become the progress bar's train_loss."""
    import os
    import re
    import subprocess
    import sys

    run = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"},
    )
    assert run.returncode == 0, f"{script.name} failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    start = re.compile("|".join(re.escape(prefix) for prefix in PRINTED))
    batch_loss = re.compile(r"(epoch \d+ )?loss \d")  # a print of the loss per batch: README says it goes
    lines = []
    for segment in re.split(r"[\r\n]", run.stdout):
        found = start.search(segment)
        if found and not batch_loss.match(segment[found.start() :]):
            lines.append(segment[found.start() :].rstrip())
    return lines


def check_whole_run(tmp_path: Path, p: Program) -> None:
    """Run to its end, the converted script prints what the original printed, line for line."""
    source = p.render()
    show(source)
    result = convert(source)
    show(result.code)
    assert not result.diagnostics and result.loops_converted == 1
    (tmp_path / "original").mkdir()
    (tmp_path / "converted").mkdir()
    (tmp_path / "original" / "gen.py").write_text(source)
    (tmp_path / "converted" / "gen.py").write_text(result.code)
    expected = printed_lines(tmp_path / "original" / "gen.py", tmp_path / "original")
    assert expected
    assert printed_lines(tmp_path / "converted" / "gen.py", tmp_path / "converted") == expected


# a sample of the after-the-loop choices, each in at least one of them, on shapes that convert
# without a diagnostic: two epochs of 4 batches
WHOLE_RUNS = {
    "module-range-reads-note-checkpoint": (
        ("module", "pair", "before_forward"),
        dict(
            unpacking="range",
            after_reads=("index", "epoch", "loss"),
            rebind_reads=True,
            note=True,
            checkpoint=True,
            print_every=2,
        ),
    ),
    "module-evaluate-print_before-collision": (
        ("module", "batch", "after_step"),
        dict(
            evaluation="call",
            print_before_eval=True,
            collision="trainer",
            collision_in_epoch=True,
            after_reads=("epoch",),
        ),
    ),
    "main-enumerate-evaluate_assign-reads": (
        ("main", "enumerate", "before_backward"),
        dict(
            evaluation="assign",
            print_before_eval=True,
            after_reads=("index", "epoch", "loss"),
            note=True,
            collision="lit_model",
            collision_in_epoch=True,
            tail_order=(3, 2, 0, 1),
        ),
    ),
    "function-checkpoint-note-evaluate": (
        ("function", "pair", "after_step"),
        dict(
            checkpoint=True,
            note=True,
            evaluation="call",
            after_reads=("epoch",),
            rebind_reads=True,
            collision="batch_idx",
            tail_order=(1, 3, 0, 2),
        ),
    ),
    "single-range-reads-collision": (
        ("single", "pair", "before_backward"),
        dict(unpacking="range", after_reads=("index", "loss"), collision="LitModel", print_every=1),
    ),
}


def whole_run_program(case: str) -> Program:
    shape, choices = WHOLE_RUNS[case]
    return replace(shaped(SHAPES.index(shape)), accumulation=None, epochs=2, samples=32, **choices)


@pytest.mark.slow
@pytest.mark.parametrize("case", list(WHOLE_RUNS))
def test_code_after_the_loop_prints_what_the_original_printed(tmp_path: Path, case: str) -> None:
    check_whole_run(tmp_path, whole_run_program(case))


# found by the whole runs above: the epoch variable rebound after training (`epoch = -1`) made the
# converter keep `epoch` as a variable of the script, read by the LightningModule, with no diagnostic
EPOCH_REBOUND_AFTER_TRAINING = """\
import torch
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
loader = DataLoader(TensorDataset(torch.randn(16, 4), torch.randn(16, 1)), batch_size=8)
model = torch.nn.Linear(4, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(2):
    for x, y in loader:
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
    print(f"epoch {epoch} loss {loss.item():.4f}")
print(f"last epoch {epoch}")
epoch = -1
print(f"epoch reset to {epoch}")
"""


def epoch_reads_in_module(code: str) -> bool:
    """Whether the LightningModule reads `epoch` (a global, or its __init__ parameter) rather than its
    current_epoch."""
    module = symtable.symtable(code, "converted.py", "exec")
    [lit] = [t for t in module.get_children() if t.get_type() == "class" and t.get_name().startswith("Lit")]
    return any(
        s.get_name() == "epoch" and s.is_referenced() for m in lit.get_children() for s in m.get_symbols()
    )


@pytest.mark.parametrize("nesting", ["module", "main"])
def test_epoch_rebound_after_training_is_not_read_by_the_module(nesting: str) -> None:
    source = EPOCH_REBOUND_AFTER_TRAINING
    if nesting == "main":
        head, body = source.split("torch.manual_seed(0)\n")
        source = (
            head
            + "\ndef main():\n"
            + "".join(
                "    " + line if line else line for line in ("torch.manual_seed(0)\n" + body).splitlines(True)
            )
        )
        source += '\n\nif __name__ == "__main__":\n    main()\n'
    compile(source, "gen.py", "exec")
    result = convert(source)
    show(result.code)
    assert result.diagnostics or not epoch_reads_in_module(result.code)
