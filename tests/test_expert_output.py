"""Output a Lightning expert would sign: what the conversion emptied goes, names say the role."""

import textwrap

import pytest

from loopshift import convert_source

LOOP = """
loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(8, 4), torch.randn(8, 1)))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(2):
    for x, y in loader:
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
"""


def script(head: str) -> str:
    return "import argparse\nimport torch\nimport torch.nn as nn\n" + textwrap.dedent(head) + LOOP


def test_branches_the_conversion_emptied_go() -> None:
    code = convert_source(
        script("""
        parser = argparse.ArgumentParser()
        parser.add_argument("--cuda", action="store_true")
        args = parser.parse_args()
        model = nn.Linear(4, 1)
        if args.cuda:
            model.cuda()
        if args.cuda:
            model = model.cuda()
        else:
            model = model.cpu()
    """)
    ).code
    assert "pass" not in code
    assert "model = nn.Linear(4, 1)\nif not args.cuda:\n    model = model.cpu()\n" in code


def test_a_pass_the_user_wrote_stays() -> None:
    code = convert_source(
        script("""
        model = nn.Linear(4, 1)
        if model.training:
            pass  # nothing to do yet
    """)
    ).code
    assert "if model.training:\n    pass  # nothing to do yet" in code


def test_a_model_chosen_by_a_flag_names_the_module_after_its_role() -> None:
    code = convert_source(
        script("""
        class Small(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 1)

            def forward(self, x):
                return self.fc(x)


        class Wide(Small):
            pass


        parser = argparse.ArgumentParser()
        parser.add_argument("--model", default="small")
        args = parser.parse_args()
        if args.model == "small":
            model = Small()
        else:
            model = Wide()
    """)
    ).code
    assert "class LitModel(L.LightningModule):" in code and "LitSmall" not in code and "LitWide" not in code


def test_epochs_counted_by_hand_are_a_range_only_where_that_means_the_same() -> None:
    counted = script("model = nn.Linear(4, 1)\n").replace(
        "for epoch in range(2):", "epoch = 0\nwhile epoch < 2:"
    )
    counted = counted.replace("        optimizer.step()\n", "        optimizer.step()\n    epoch += 1\n")
    code = convert_source(counted).code
    assert "L.Trainer(max_epochs=2)" in code and "while" not in code
    # read after the loop, the counter is 2 where a for loop would leave 1: not rewritten
    kept = convert_source(counted + "print(epoch)\n")
    assert "while epoch < 2:" in kept.code and kept.diagnostics


HAND_UPDATE_THROUGH_DATA = textwrap.dedent("""
    import torch
    from itertools import count

    fc = torch.nn.Linear(3, 1)
    for batch_idx in count(1):
        x = torch.randn(8, 3)
        fc.zero_grad()
        output = torch.nn.functional.mse_loss(fc(x), x.sum(1, keepdim=True))
        output.backward()
        UPDATE
        if output.item() < 1e-3:
            break
""")


@pytest.mark.parametrize(
    "update",
    [
        "param.data.add_(-0.1 * param.grad)",
        "param.data.sub_(0.1 * param.grad)",
        "param.data -= 0.1 * param.grad",
    ],
)
def test_a_hand_written_update_through_data_is_kept_under_manual_optimization(update: str) -> None:
    loop = f"for param in fc.parameters():\n        {update}"
    result = convert_source(HAND_UPDATE_THROUGH_DATA.replace("UPDATE", loop))
    assert not result.diagnostics
    assert (
        "self.automatic_optimization = False" in result.code and "self.manual_backward(output)" in result.code
    )
    assert f"for param in self.model.parameters():\n            {update}" in result.code


def test_a_hand_written_update_it_does_not_take_is_named_as_such() -> None:
    update = "fc.weight.data = fc.weight.data - 0.1 * fc.weight.grad"
    result = convert_source(HAND_UPDATE_THROUGH_DATA.replace("UPDATE", update))
    [diagnostic] = result.diagnostics
    assert (
        "updates the parameters by hand" in diagnostic.message
        and "optimizer.step()" not in diagnostic.message
    )


PHASES = textwrap.dedent("""
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    data = TensorDataset(torch.randn(32, 4), torch.randint(0, 2, (32,)))
    loaders = {"train": DataLoader(data, batch_size=8), "val": DataLoader(data, batch_size=8)}
    model = nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(2):
        for phase in ["train", "val"]:
            if phase == "train":
                model.train()
            else:
                model.eval()
            total = 0.0
            for x, y in loaders[phase]:
                optimizer.zero_grad()
                with torch.set_grad_enabled(phase == "train"):
                    loss = nn.functional.cross_entropy(model(x), y)
                    if phase == "train":
                        loss.backward()
                        optimizer.step()
                total += loss.item()
            print(f"{phase} loss {total:.4f}")
""")


def test_train_and_val_phases_of_one_loop_are_the_step_and_the_validation() -> None:
    result = convert_source(PHASES)
    assert not result.diagnostics
    assert "def training_step(" in result.code and "def validation_step(" in result.code
    module = result.code.split("class ")[1].split("def configure_optimizers")[0]
    assert "phase" not in module and 'print(f"val loss {self.total:.4f}")' in module
    assert 'val_dataloaders=loaders["val"]' in result.code


def test_a_phase_loop_read_after_it_or_left_by_break_stays() -> None:
    import libcst as cst

    from loopshift.phases import phases_unrolled

    assert phases_unrolled(cst.parse_module(PHASES)) is not None
    assert phases_unrolled(cst.parse_module(PHASES + "print(phase)\n")) is None
    printed = '        print(f"{phase} loss {total:.4f}")\n'
    broken = PHASES.replace(printed, printed + "        if total > 1e9:\n            break\n")
    assert broken != PHASES
    assert phases_unrolled(cst.parse_module(broken)) is None


def test_one_line_blocks_in_a_phase_loop_are_written_out_too() -> None:
    one_line = PHASES.replace(
        'if phase == "train":\n            model.train()\n        else:\n            model.eval()\n',
        'if phase == "train": model.train()\n        else: model.eval()\n',
    )
    assert one_line != PHASES
    result = convert_source(one_line)
    assert not result.diagnostics
    assert "def training_step(" in result.code and "def validation_step(" in result.code
    assert convert_source(result.code).code == result.code
    compile(result.code, "converted.py", "exec")


CRITERION_LOOP = """
model = nn.Sequential(nn.Linear(4, 1), nn.Sigmoid())
loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(8, 4), torch.rand(8, 1)))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(2):
    {criterion}
    for x, y in loader:
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
"""


def test_a_loss_module_built_every_epoch_is_built_once_in_init() -> None:
    code = convert_source(
        "import torch\nimport torch.nn as nn\n"
        + CRITERION_LOOP.format(criterion='criterion = nn.BCELoss(reduction="mean")')
    ).code
    compile(code, "<converted>", "exec")
    assert (
        "    def __init__(self, model):\n"
        "        super().__init__()\n"
        "        self.model = model\n"
        '        self.criterion = nn.BCELoss(reduction="mean")\n'
    ) in code
    assert "on_train_epoch_start" not in code


def test_a_loss_module_whose_arguments_change_per_epoch_stays_in_the_epoch() -> None:
    code = convert_source(
        "import torch\nimport torch.nn as nn\n"
        + CRITERION_LOOP.format(criterion="criterion = nn.SmoothL1Loss(beta=1.0 / (epoch + 1))")
    ).code
    compile(code, "<converted>", "exec")
    assert (
        "    def on_train_epoch_start(self):\n"
        "        self.criterion = nn.SmoothL1Loss(beta=1.0 / (self.current_epoch + 1))\n"
    ) in code


def test_an_assignment_only_a_removed_print_read_goes() -> None:
    source = script("model = nn.Linear(4, 1)\n").replace(
        "    for x, y in loader:\n",
        "    for step, (x, y) in enumerate(loader, start=1):\n        scale = len(x)\n",
    )
    source = source.replace(
        "        optimizer.step()\n",
        "        optimizer.step()\n"
        "        if step % 2 == 0:\n"
        "            print(f'step {step} loss {loss.item()}')\n",
    )
    code = convert_source(source).code
    compile(code, "<converted>", "exec")
    # the print is the progress bar's now: `step = batch_idx + 1` that only it read goes;
    # a call may do something, so `scale = len(x)` stays, read or not
    assert (
        "    def training_step(self, batch, batch_idx):\n"
        "        x, y = batch\n"
        "        scale = len(x)\n"
        "        loss = torch.nn.functional.mse_loss(self.model(x), y)\n"
    ) in code
    assert "step =" not in code


DATASET_SIZE = """
import torch
import torch.nn as nn


def main():
    model = nn.Linear(4, 1)
    train_set = torch.utils.data.TensorDataset(torch.randn(8, 4), torch.rand(8, 1))
    loader = torch.utils.data.DataLoader(train_set, batch_size=4)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(2):
        total = 0.0
        for x, y in loader:
            optimizer.zero_grad()
            loss = nn.functional.mse_loss(model(x), y)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(x)
        print(f"mean loss {total / len(loader.dataset)}{suffix}")
"""


def test_a_loader_fit_trains_on_is_not_kept_for_its_dataset_size() -> None:
    code = convert_source(DATASET_SIZE.replace("{suffix}", "")).code
    compile(code, "<converted>", "exec")
    assert (
        "    def __init__(self, model):\n        super().__init__()\n        self.model = model\n"
    ) in code
    assert (
        "    def on_train_epoch_end(self):\n"
        '        print(f"mean loss {self.total / len(self.trainer.train_dataloader.dataset)}")\n'
    ) in code
    assert "    lit_model = LitModel(model)\n    trainer = L.Trainer(max_epochs=2)\n" in code
    assert "trainer.fit(lit_model, train_dataloaders=loader)" in code


def test_a_loader_the_hooks_read_otherwise_stays_on_the_module_once() -> None:
    code = convert_source(DATASET_SIZE.replace("{suffix}", " over {len(loader)} batches")).code
    compile(code, "<converted>", "exec")
    assert "self.trainer.train_dataloader" not in code
    assert (
        '        print(f"mean loss {self.total / len(self.loader.dataset)} '
        'over {len(self.loader)} batches")\n'
    ) in code
    assert code.count("self.loader = loader") == 1


def test_a_global_loader_passed_to_train_is_not_kept_for_its_dataset_size() -> None:
    # the PyTorch quickstart: `size = len(dataloader.dataset)` of train()'s parameter
    code = convert_source(
        textwrap.dedent("""
        import torch
        from torch import nn

        model = nn.Linear(4, 3)
        data = torch.utils.data.TensorDataset(torch.randn(64, 4), torch.randint(0, 3, (64,)))
        train_dataloader = torch.utils.data.DataLoader(data, batch_size=8)
        loss_fn = nn.CrossEntropyLoss()
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)


        def train(dataloader, model, loss_fn, optimizer):
            size = len(dataloader.dataset)
            for X, y in dataloader:
                loss = loss_fn(model(X), y)
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
            print(f"{size} samples")


        for t in range(2):
            train(train_dataloader, model, loss_fn, optimizer)
    """)
    ).code
    compile(code, "<converted>", "exec")
    assert "    def __init__(self, model, loss_fn):\n" in code
    assert (
        "    def on_train_epoch_start(self):\n"
        "        self.size = len(self.trainer.train_dataloader.dataset)\n"
    ) in code
    assert "lit_model = LitModel(model, loss_fn)\n" in code


def test_an_index_the_user_called_batch_is_batch_idx() -> None:
    # the PyTorch quickstart: `for batch, (X, y) in enumerate(dataloader)`
    source = script("model = nn.Linear(4, 1)\n").replace(
        "    for x, y in loader:\n", "    for batch, (x, y) in enumerate(loader):\n"
    )
    source = source.replace(
        "        optimizer.step()\n",
        "        optimizer.step()\n"
        "        if batch % 2 == 0:\n"
        "            current = (batch + 1) * len(x)\n"
        "            print(loss.item(), current)\n",
    )
    code = convert_source(source).code
    compile(code, "<converted>", "exec")
    assert (
        "    def training_step(self, batch, batch_idx):\n"
        "        x, y = batch\n"
        "        loss = torch.nn.functional.mse_loss(self.model(x), y)\n"
        '        self.log("train_loss", loss)\n'
        "        if batch_idx % 2 == 0:\n"
        "            current = (batch_idx + 1) * len(x)\n"
    ) in code
    # read after training, the index keeps the user's name
    kept = convert_source(source + "print(batch)\n").code
    assert "if batch % 2 == 0:" in kept and "    def training_step(self, batch_, batch):\n" in kept


def test_a_loss_the_step_rebinds_after_backward_is_returned_as_backward_had_it() -> None:
    # the PyTorch quickstart's `loss, current = loss.item(), ...`: training_step returned a float
    source = script("model = nn.Linear(4, 1)\n").replace(
        "        optimizer.step()\n",
        "        optimizer.step()\n"
        "        loss, current = loss.item(), len(x)\n"
        "        print(f'loss: {loss:>7f} [{current}]')\n",
    )
    code = convert_source(source).code
    compile(code, "<converted>", "exec")
    assert (
        "        loss = torch.nn.functional.mse_loss(self.model(x), y)\n"
        "        train_loss = loss\n"
        '        self.log("train_loss", train_loss)\n'
        "        loss, current = loss.item(), len(x)\n"
        "        print(f'loss: {loss:>7f} [{current}]')\n"
        "        return train_loss\n"
    ) in code


OPTIMIZER_FROM_A_METHOD = """
import torch
from torch.utils.data import DataLoader, TensorDataset


class Net(torch.nn.Linear):
    def configure_optimizers(self, lr):
        return torch.optim.SGD(self.parameters(), lr=lr)


model = Net(4, 1)
optimizer = model.configure_optimizers(0.1)
loader = DataLoader(TensorDataset(torch.randn(8, 4), torch.randn(8, 1)), batch_size=4)
for x, y in loader:
    optimizer.zero_grad()
    torch.nn.functional.mse_loss(model(x), y).backward()
    optimizer.step()
"""


def test_an_optimizer_built_where_analysis_does_not_look_is_named_as_such() -> None:
    result = convert_source(OPTIMIZER_FROM_A_METHOD)
    [diagnostic] = result.diagnostics
    assert diagnostic.message.startswith(
        "`optimizer` steps like an optimizer, but no torch.optim optimizer is built where the analysis "
        "looks (`optimizer = model.configure_optimizers(0.1)`)"
    )
    assert "by hand" not in diagnostic.message


VALIDATION_METRIC = """
import torch
from torch.utils.data import DataLoader, TensorDataset

model = torch.nn.Linear(4, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
loader = DataLoader(TensorDataset(torch.randn(16, 4), torch.randn(16, 1)), batch_size=4)
val_loader = DataLoader(TensorDataset(torch.randn(8, 4), torch.randn(8, 1)), batch_size=4)


def evaluate(model, loader):
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for x, y in loader:
            total += torch.nn.functional.mse_loss(model(x), y, reduction="sum").item()
            count += len(x)
    model.train()
    return total / count


for epoch in range(2):
    for x, y in loader:
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
    val_mse = evaluate(model, val_loader)
    print(f"epoch {epoch}: val mse {val_mse:.4f}")
"""


def test_a_validation_metric_the_script_computes_is_logged_under_its_name() -> None:
    result = convert_source(VALIDATION_METRIC)
    assert not result.diagnostics
    epoch_end = result.code.split("def on_validation_epoch_end(self):", 1)[1].split("def ", 1)[0]
    assert '        self.log("val_mse", self.val_mse)\n' in epoch_end  # checkpoints and early stopping see it
    assert (
        'print(f"epoch {self.current_epoch}: val mse {self.val_mse:.4f}")' in result.code
    )  # and it still prints
