"""LS103 device-placement."""

from __future__ import annotations

import ast
from typing import cast

from ..raw_loops import device_moves, raw_training_loops
from ..rule import Context, Rule, attribute


class DevicePlacement(Rule):
    """
    ## What it does
    Finds `.to(device)` and `.cuda()` calls inside the batch loop of a hand-written training
    loop (the loops LS101 reports).

    ## Why is this bad?
    Device placement is the Trainer's job (`Trainer(accelerator=..., devices=...)`): it moves
    the model once and every batch as it arrives, on one GPU, many, or none. Moves written by
    hand pin the script to one kind of machine and are easy to miss for one tensor of the batch.

    ## Example
    ```python
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    device = torch.device("cuda")
    model = torch.nn.Linear(4, 1).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = DataLoader(TensorDataset(torch.randn(8, 4), torch.randn(8, 1)), batch_size=4)
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()
    ```

    ## Use instead
    ```python
    import lightning as L

    trainer = L.Trainer(accelerator="gpu", devices=1)  # and a training_step without .to()
    ```
    `loopshift convert` (LS101's fix) drops these moves as it converts the loop.
    """

    code = "LS103"
    name = "device-placement"
    summary = "A .to(device) or .cuda() call inside a hand-written training loop"
    needs = (attribute("backward"), attribute("to|cuda"))
    VALID = [
        """
        import torch

        device = torch.device("cuda")
        model = torch.nn.Linear(4, 1).to(device)  # outside any training loop
        """,
        """
        import torch

        def train(model, loader, optimizer):
            for x, y in loader:
                optimizer.zero_grad()
                model(x.to(torch.float64)).sum().backward()  # a dtype, not a device
                optimizer.step()
        """,
    ]
    INVALID = [
        """
        import torch

        def train(model, loader, optimizer, device):
            for x, y in loader:
                x = x.cuda()
                y = y.to(device, non_blocking=True)
                optimizer.zero_grad()
                torch.nn.functional.mse_loss(model(x), y).backward()
                optimizer.step()

        train(torch.nn.Linear(4, 1), [], None, "cuda")
        """,
    ]

    def check_syntax(self, facts):
        facts = facts.lenient  # decided on ast alone
        return [
            facts.finding(
                self,
                facts.bare_span(call),
                f"`.{cast(ast.Attribute, call.func).attr}()` moves data by hand in a training "
                "loop: the Trainer places the model and every batch",
            )
            for call in device_moves(facts, raw_training_loops(facts))
        ]

    def check(self, context: Context):
        return self.check_syntax(context.syntax) if context.syntax else []
