"""Device moves: what counts as a device."""

import textwrap
from pathlib import Path

from loopshift import convert_source
from loopshift.lint import lint_paths

BYTES_DEVICE = textwrap.dedent("""\
    import torch
    from torch import nn

    device = b"cpu"
    model = nn.Linear(4, 1).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    data = torch.utils.data.TensorDataset(torch.randn(8, 4), torch.randn(8, 1))
    loader = torch.utils.data.DataLoader(data)
    for epoch in range(2):
        for x, y in loader:
            x = x.to(device)
            optimizer.zero_grad()
            loss = nn.functional.mse_loss(model(x), y)
            loss.backward()
            optimizer.step()
    """)


def test_a_bytes_literal_is_no_device_and_no_crash(tmp_path: Path) -> None:
    """`b"cpu"` evaluates to bytes: splitting it at ":" raised TypeError in convert and lint."""
    result = convert_source(BYTES_DEVICE)
    assert result.loops_converted == 1
    assert 'device = b"cpu"' in result.code
    path = tmp_path / "train.py"
    path.write_text(BYTES_DEVICE)
    [report] = lint_paths([path])
    assert report.error is None and "LS101" in [f.code for f in report.findings]
