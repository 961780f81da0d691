"""Trains a small regressor with the Trainer of trainer.py."""
import torch
import torch.nn as nn
from torch.nn import functional as F
from torch.utils.data import TensorDataset

from trainer import Trainer, TrainerConfig


class Regressor(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, width), nn.Tanh(), nn.Linear(width, 1))

    def forward(self, x, targets=None):
        out = self.net(x)
        loss = F.mse_loss(out, targets) if targets is not None else None
        return out, loss

    def configure_optimizers(self, config):
        return torch.optim.AdamW(self.parameters(), lr=config.learning_rate)


def make_model(kind, width):
    if kind == 'regressor':
        return Regressor(width)
    raise ValueError(kind)


def report(trainer):
    if trainer.iter_num % 10 == 0:
        print(f"iter {trainer.iter_num}: train loss {trainer.loss.item():.5f}")


if __name__ == '__main__':
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(256, 8), torch.randn(256, 1))
    trainer = Trainer(TrainerConfig(max_iters=40), make_model('regressor', 32), data)
    trainer.add_callback(report)
    trainer.run()
