"""idioms/clipping.py: the one reading of a clip call that both targets use."""

import libcst as cst
import pytest

from loopshift import convert_source
from loopshift.idioms import clipping
from loopshift.index import CodeIndex

LOOP = """\
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

model = nn.Linear(4, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
loader = DataLoader(TensorDataset(torch.randn(64, 4), torch.randn(64, 1)), batch_size=8)

for epoch in range(2):
    for x, y in loader:
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        {clip}
        optimizer.step()
"""


def fact(clip: str) -> clipping.GradientClipping:
    index = CodeIndex(cst.parse_module(LOOP.format(clip=clip)))
    (found,) = clipping.clippings(index)
    assert clipping.clippings(index) is clipping.clippings(index)  # read once per module
    return found


@pytest.mark.parametrize(
    "clip, algorithm, names, understood, norm",
    [
        pytest.param("torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)", "norm",
                     ["parameters", "max_norm"], True, None, id="positional"),
        pytest.param("torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0, norm_type=3)", "norm",
                     ["parameters", "max_norm", "norm_type"], True, None, id="norm-type"),
        pytest.param("n = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)", "norm",
                     ["parameters", "max_norm"], True, "n", id="norm-read"),
        pytest.param("torch.nn.utils.clip_grad_value_(model.parameters(), 0.5, True)", "value",
                     ["parameters", "clip_value", "foreach"], True, None, id="value-foreach"),
        pytest.param("torch.nn.utils.clip_grad_norm_(model.parameters(), *args)", "norm",
                     ["parameters"], False, None, id="starred"),
    ],
)  # fmt: skip
def test_fact(clip, algorithm, names, understood, norm):
    found = fact(clip)
    assert found.algorithm == algorithm
    assert list(found.arguments) == names
    assert found.understood is understood
    assert (found.norm.value if found.norm else None) == norm
    assert found.statement is not None


@pytest.mark.parametrize(
    "clip, trainer",
    [
        ("torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)", "gradient_clip_val=1.0)"),
        ("torch.nn.utils.clip_grad_value_(model.parameters(), 0.5)",
         'gradient_clip_val=0.5, gradient_clip_algorithm="value")'),
    ],
)  # fmt: skip
def test_trainer_arguments(clip, trainer):
    assert trainer in convert_source(LOOP.format(clip=clip)).code


@pytest.mark.parametrize(
    "clip",
    [
        "torch.nn.utils.clip_grad_norm_(model.parameters(), *args)",
        "torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0, **kw)",
        "torch.nn.utils.clip_grad_value_(model.parameters(), max_norm=0.5)",
    ],
)
def test_no_clip_value_from_arguments_torch_does_not_take_so(clip):
    """`*args` / `**kw` were read as the clip value (`gradient_clip_val=args`), and a keyword the
    function does not take as its value: now the call is kept as written."""
    code = convert_source(LOOP.format(clip=clip)).code
    assert "gradient_clip_val=" not in code.replace("gradient_clip_val=None", "")
    assert clip.replace("model.", "self.model.") in code or clip in code
