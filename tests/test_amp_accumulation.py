"""Mixed precision and gradient accumulation details found by the property tests: the scaler's calls
inside the accumulation condition, the torch.GradScaler spelling, CPU autocast's dtype, and reads of
the divided loss after backward."""

import textwrap

from loopshift import convert_source

LOOP = """
import torch
import torch.nn as nn

ACCUM = 2
model = nn.Linear(4, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
loader = [(torch.randn(4, 4), torch.randn(4, 2))] * 4
use_amp = torch.cuda.is_available()
scaler = {scaler}(enabled=use_amp)
total = 0.0
for i, (x, y) in enumerate(loader):
    with torch.autocast(device_type={device}, enabled=use_amp):
        loss = nn.functional.mse_loss(model(x), y)
    loss = loss / ACCUM
    scaler.scale(loss).backward()
    total += loss.item()
    print(loss.item() * ACCUM)
    if (i + 1) % ACCUM == 0 or i + 1 == len(loader):
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad()
"""


def converted(scaler: str = "torch.cuda.amp.GradScaler", device: str = '"cuda"') -> str:
    result = convert_source(textwrap.dedent(LOOP.format(scaler=scaler, device=device)))
    assert result.loops_converted == 1 and not result.diagnostics, [d.message for d in result.diagnostics]
    compile(result.code, "converted.py", "exec")
    return result.code


def test_scaler_calls_inside_the_accumulation_condition_go() -> None:
    code = converted()
    assert "scaler" not in code.split("class ")[1].split("\nmodel = ")[0]  # nothing of it in the module
    assert (
        'precision="16-mixed" if use_amp else "32-true"' in code and "accumulate_grad_batches=ACCUM" in code
    )


def test_reads_of_the_divided_loss_read_it_divided() -> None:
    code = converted()
    assert "self.total += (loss / ACCUM).item()" in code
    assert "print(loss.item())" in code  # `* ACCUM` undid the division: it needs none now


def test_torch_grad_scaler_spelling_and_cpu_autocast() -> None:
    assert "precision=" in converted(scaler="torch.GradScaler")
    assert '"bf16-mixed" if use_amp' in converted(device='"cpu"')  # CPU autocast computes in bfloat16
