"""followed_into_loops decides from the module as it is whether writing its loops out could clear
every TODO: what `rewritable` names must hold every statement the rewriting changes."""

import libcst as cst
import pytest
from conftest import FIXTURES
from hypothesis import HealthCheck, given, settings
from update_depths import DepthProgram, depth_programs

from loopshift.convert import changed_statements, loops_written_out, rewritable
from loopshift.index import CodeIndex

CASES = sorted(FIXTURES.glob("*/input.py"))


def check_rewritable_holds_the_changes(source: str) -> int:
    index = CodeIndex(cst.parse_module(source))
    rewritten = loops_written_out(index.module)
    if rewritten is None:
        return 0
    changed = changed_statements(index.module, rewritten)
    named = set(map(id, rewritable(index)))
    missed = [index.module.code_for_node(s)[:200] for s in changed if id(s) not in named]
    assert not missed, missed
    return len(changed)


FLAT_COUNTED_EPOCHS = """\
import torch
from torch import nn

model = nn.Linear(4, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
x, y = torch.randn(8, 4), torch.randn(8, 1)
epoch = 0
while epoch < 3:
    optimizer.zero_grad()
    loss = nn.functional.mse_loss(model(x), y)
    loss.backward()
    optimizer.step()
    epoch += 1
"""


def test_rewritable_holds_the_counter_before_a_flat_while() -> None:
    assert check_rewritable_holds_the_changes(FLAT_COUNTED_EPOCHS) == 2  # `epoch = 0` and the loop


@pytest.mark.slow  # writes out every fixture
def test_rewritable_holds_what_the_fixtures_change() -> None:
    changed = sum(check_rewritable_holds_the_changes(case.read_text()) for case in CASES)
    assert changed > 0  # some fixtures are written out: the check above looked at something


@settings(deadline=None, database=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(depth_programs())
def test_rewritable_holds_what_helpers_at_any_depth_change(p: DepthProgram) -> None:
    check_rewritable_holds_the_changes(p.render())
