"""Imports the conversion left unused go; every other import stays as it was."""

import textwrap

from loopshift import convert_source
from loopshift.unused_imports import globals_read, without_unused_imports

SCRIPT = textwrap.dedent("""
    import torch
    from torch.utils.data import DataLoader, TensorDataset
    from tqdm import tqdm

    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = DataLoader(TensorDataset(torch.randn(8, 4), torch.randn(8, 1)), batch_size=4)
    for epoch in range(2):
        for x, y in tqdm(loader, desc=f"epoch {epoch}"):
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            optimizer.step()
""")


def test_the_progress_bars_import_goes_with_the_bar() -> None:
    result = convert_source(SCRIPT)
    assert not result.diagnostics
    assert "tqdm" not in result.code
    assert convert_source(result.code).code == result.code


def test_a_name_still_read_stays() -> None:
    result = convert_source(SCRIPT + "print(tqdm.__name__)\n")
    assert "from tqdm import tqdm" in result.code


def test_only_names_the_input_read_and_the_output_does_not_go() -> None:
    source = (
        "import os\nimport sys  # kept: a comment on the line\nimport json\nprint(os.sep, sys.argv, json)\n"
    )
    code = "import os\nimport sys  # kept: a comment on the line\nimport json\nimport re\nprint(0)\n"
    assert (
        without_unused_imports(source, code)
        == "import sys  # kept: a comment on the line\nimport re\nprint(0)\n"
    )


def test_a_dotted_import_read_through_its_package_stays() -> None:
    source = "import torch\nimport torch.distributed as dist\ndist.barrier()\n"
    code = "import torch\nimport torch.distributed as dist\ntorch.distributed.barrier()\n"
    assert without_unused_imports(source, code) == code


def test_a_local_of_the_same_name_is_no_read_of_the_global() -> None:
    assert "tqdm" not in globals_read("import tqdm\ndef f():\n    tqdm = 1\n    return tqdm\n")
    assert "tqdm" in globals_read("import tqdm\ndef f():\n    return tqdm.tqdm\n")
