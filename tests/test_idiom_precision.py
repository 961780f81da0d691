"""idioms/precision.py: one reading of an autocast block's precision, for both targets."""

import re

import libcst as cst
import pytest

from loopshift import convert_source
from loopshift.idioms import precision
from loopshift.index import CodeIndex

LOOP = """\
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

model = nn.Linear(4, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
loader = DataLoader(TensorDataset(torch.randn(64, 4), torch.randn(64, 1)), batch_size=8)
use_amp = True

for epoch in range(2):
    for x, y in loader:
        optimizer.zero_grad()
        with {autocast}:
            loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
"""

CASES = [
    pytest.param('torch.autocast("cpu")', "bf16-mixed", True, id="cpu-positional"),
    pytest.param('torch.autocast(device_type="cpu")', "bf16-mixed", True, id="cpu-keyword"),
    pytest.param('torch.amp.autocast("cpu", enabled=use_amp)', "bf16-mixed", True, id="cpu-enabled"),
    pytest.param("torch.cpu.amp.autocast()", "bf16-mixed", True, id="torch-cpu-amp"),
    pytest.param('torch.autocast("cuda")', "16-mixed", True, id="cuda"),
    pytest.param('torch.autocast("cuda", dtype=torch.bfloat16)', "bf16-mixed", True, id="cuda-bf16"),
    pytest.param('torch.autocast("cuda", torch.bfloat16)', "bf16-mixed", False, id="dtype-positional"),
    pytest.param('torch.autocast("cuda", dtype=torch.float32)', None, True, id="not-half"),
    pytest.param("torch.cuda.amp.autocast(use_amp)", "16-mixed", False, id="enabled-positional"),
]


@pytest.mark.parametrize("autocast, mode, understood", CASES)
def test_fact(autocast, mode, understood):
    index = CodeIndex(cst.parse_module(LOOP.format(autocast=autocast)))
    (item,) = index.nodes(cst.WithItem)
    fact = precision.autocast_of(index, item.item)
    assert fact is precision.autocast_of(index, item.item)  # read once per module
    assert (fact.mode, fact.understood) == (mode, understood)


@pytest.mark.parametrize("autocast, mode, understood", [c for c in CASES if c.values[1]])
def test_targets_agree(autocast, mode, understood):
    """Both targets write the precision the block runs (the Trainer used to write "16-mixed" for
    CPU autocast, whose default is bfloat16); Fabric converts only blocks it understood, and fp16
    only with a GradScaler (it would scale the loss)."""
    source = LOOP.format(autocast=autocast)
    trainer = re.search(r'Trainer\(.*precision="([^"]+)"', convert_source(source).code)
    fabric = re.search(r'Fabric\(.*precision="([^"]+)"', convert_source(source, target="fabric").code)
    assert trainer.group(1) == mode
    assert (fabric.group(1) if fabric else None) == (mode if understood and mode != "16-mixed" else None)
