"""A model-agnostic Trainer (minGPT style), in a module of its own.

The Trainer only knows that `model(x, y)` returns `(logits, loss)` and that
`model.configure_optimizers(config)` hands back an optimizer; callbacks read its state.
"""
import time

import torch
from torch.utils.data import DataLoader, RandomSampler


class TrainerConfig:
    def __init__(self, **overrides):
        self.device = 'auto'
        self.max_iters = None
        self.batch_size = 16
        self.learning_rate = 3e-3
        self.grad_norm_clip = 1.0
        self.__dict__.update(overrides)


class Trainer:
    def __init__(self, config, model, train_dataset):
        self.config = config
        self.model = model
        self.optimizer = None
        self.train_dataset = train_dataset
        self.callbacks = []
        if config.device == 'auto':
            self.device = 'cuda' if torch.cuda.is_available() else 'cpu'
        else:
            self.device = config.device
        self.model = self.model.to(self.device)
        self.iter_num = 0
        self.loss = None

    def add_callback(self, callback):
        self.callbacks.append(callback)

    def run(self):
        model, config = self.model, self.config
        self.optimizer = model.configure_optimizers(config)

        train_loader = DataLoader(
            self.train_dataset,
            sampler=RandomSampler(self.train_dataset, replacement=True, num_samples=int(1e10)),
            batch_size=config.batch_size,
        )

        model.train()
        self.iter_num = 0
        data_iter = iter(train_loader)
        while True:
            try:
                batch = next(data_iter)
            except StopIteration:
                data_iter = iter(train_loader)
                batch = next(data_iter)
            x, y = [t.to(self.device) for t in batch]

            logits, self.loss = model(x, y)

            model.zero_grad(set_to_none=True)
            self.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_norm_clip)
            self.optimizer.step()

            for callback in self.callbacks:
                callback(self)
            self.iter_num += 1
            if config.max_iters is not None and self.iter_num >= config.max_iters:
                break
