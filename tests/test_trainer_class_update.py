"""An update in a per-batch method of the user's own Trainer class (torchrun style): the optimizer
built and returned by a helper is handed to Lightning as it is, and processes set up only under a
launch test keep a single process (with the loader's own sampler) where that test does not hold."""

from loopshift import convert_source

SCRIPT = """
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributed import init_process_group
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, TensorDataset


def is_distributed_launch():
    return "WORLD_SIZE" in os.environ


class Trainer:
    def __init__(self, model, loader, optimizer):
        self.distributed = is_distributed_launch()
        self.model = model
        self.loader = loader
        self.optimizer = optimizer
        {scheduler}
        if self.distributed:
            self.model = DDP(self.model)

    def _run_batch(self, x, y):
        self.optimizer.zero_grad()
        loss = F.mse_loss(self.model(x), y)
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def _run_epoch(self, epoch):
        total = 0.0
        for x, y in self.loader:
            total += self._run_batch(x, y)
        print(f"epoch {{epoch}}: {{total / len(self.loader):.4f}}")

    def train(self, epochs):
        for epoch in range(epochs):
            self._run_epoch(epoch)
            {step}


def build(seed):
    torch.manual_seed(seed)
    model = nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    return model, optimizer


def main():
    {setup}
    model, optimizer = build(0)
    loader = DataLoader(TensorDataset(torch.randn(8, 4), torch.randn(8, 2)), batch_size=4)
    Trainer(model, loader, optimizer).train(3)


if __name__ == "__main__":
    main()
"""


def script(
    setup: str = 'if is_distributed_launch():\n        init_process_group("gloo")',
    scheduler: str = "",
    step: str = "",
) -> str:
    return SCRIPT.format(setup=setup, scheduler=scheduler, step=step)


def test_the_optimizer_a_helper_returns_is_handed_to_lightning_as_it_is() -> None:
    result = convert_source(script())
    assert not result.diagnostics, result.diagnostics
    assert "    def configure_optimizers(self):\n        return self.user_trainer.optimizer\n" in result.code
    assert "lit_model = LitModel(self.model, self)" in result.code
    assert (
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n    return model, optimizer" in result.code
    )
    assert "self.total += loss.item()" in result.code  # the epoch's sum keeps what the method returned
    assert "DDP(" not in result.code and "init_process_group(" not in result.code


def test_processes_set_up_under_a_launch_test_keep_one_process_elsewhere() -> None:
    result = convert_source(script())
    assert 'strategy="ddp" if is_distributed_launch() else "auto"' in result.code
    fabric = convert_source(script(), target="fabric")
    assert 'strategy="ddp" if is_distributed_launch() else "auto"' in fabric.code


def test_a_process_group_set_up_always_is_ddp_always() -> None:
    result = convert_source(script(setup='init_process_group("gloo")'))
    assert not result.diagnostics, result.diagnostics
    assert 'strategy="ddp")' in result.code and "is_distributed_launch() else" not in result.code


def test_a_handed_over_optimizer_with_a_scheduler_stays_a_todo() -> None:
    result = convert_source(
        script(
            scheduler="self.scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2)",
            step="self.scheduler.step()",
        )
    )
    assert [d.code for d in result.diagnostics] == ["LS001"]
    assert "L.Trainer" not in result.code
