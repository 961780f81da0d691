"""Which qualified names are the torch, Lightning and helper APIs the converter understands."""

from __future__ import annotations

DEVICE_STRINGS = ("cuda", "cpu", "mps")
MODULE_BASES = {"torch.nn.Module", "torch.nn.modules.module.Module"}
DATALOADERS = {"torch.utils.data.DataLoader", "torch.utils.data.dataloader.DataLoader"}
PROGRESS_BARS = {"tqdm.tqdm", "tqdm.auto.tqdm", "tqdm.notebook.tqdm", "tqdm.tqdm.tqdm", "tqdm.std.tqdm"}
GRAD_SCALERS = {
    "torch.GradScaler",
    "torch.amp.GradScaler",
    "torch.cuda.amp.GradScaler",
    "torch.amp.grad_scaler.GradScaler",
    "torch.cuda.amp.grad_scaler.GradScaler",
}
AUTOCASTS = {
    "torch.autocast",
    "torch.amp.autocast",
    "torch.cuda.amp.autocast",
    "torch.cpu.amp.autocast",
    "torch.amp.autocast_mode.autocast",
}
PLATEAU = "torch.optim.lr_scheduler.ReduceLROnPlateau"
DATA_PARALLEL = {
    "torch.nn.DataParallel",
    "torch.nn.parallel.DataParallel",
    "torch.nn.parallel.data_parallel.DataParallel",
}
DISTRIBUTED_DATA_PARALLEL = {
    "torch.nn.parallel.DistributedDataParallel",
    "torch.nn.parallel.distributed.DistributedDataParallel",
}
PROCESS_GROUP = {
    "torch.distributed.init_process_group",
    "torch.distributed.destroy_process_group",
    "torch.distributed.distributed_c10d.init_process_group",
    "torch.distributed.distributed_c10d.destroy_process_group",
}
DISTRIBUTED_SAMPLERS = {
    "torch.utils.data.DistributedSampler",
    "torch.utils.data.distributed.DistributedSampler",
}
SPAWNS = {"torch.multiprocessing.spawn", "torch.multiprocessing.spawn.spawn"}
SET_DEVICE = {"torch.cuda.set_device"}
SUMMARY_WRITERS = {
    "torch.utils.tensorboard.SummaryWriter",
    "torch.utils.tensorboard.writer.SummaryWriter",
    "tensorboardX.SummaryWriter",
}


def is_scheduler(name: str) -> bool:
    return name.startswith("torch.optim.lr_scheduler.")


def is_optimizer(name: str) -> bool:
    """torch.optim.SGD, torch.optim.adam.Adam, ... but not the schedulers or helpers."""
    if not name.startswith("torch.optim.") or is_scheduler(name):
        return False
    leaf = name.rsplit(".", 1)[-1]
    return leaf[:1].isupper() and leaf != "Optimizer"
