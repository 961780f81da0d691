"""The data-parallel plumbing the Trainer owns: what goes, what the Trainer gets, and what is left
with a TODO (a spawned worker's rank read before the Trainer has started the processes)."""

import textwrap

from loopshift import convert_source

SPAWNED = """
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset


def worker(rank, world_size, epochs):
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    {before}
    model = nn.parallel.DistributedDataParallel(nn.Linear(4, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = DataLoader(TensorDataset(torch.randn(8, 4), torch.randn(8, 2)), batch_size=4)
    for epoch in range(epochs):
        for x, y in loader:
            optimizer.zero_grad()
            loss = nn.functional.mse_loss(model(x), y)
            loss.backward()
            optimizer.step()
    dist.destroy_process_group()


if __name__ == "__main__":
    mp.spawn(worker, args=({count}, 3), nprocs={nprocs})
"""


def flat_loop(model: str) -> str:
    """A loop over a loader training `model`, as lines indented for a dedented snippet."""
    return textwrap.indent(
        textwrap.dedent(f"""\
        optimizer = torch.optim.SGD({model}.parameters(), lr=0.1)
        data = torch.utils.data.TensorDataset(torch.randn(4, 4), torch.randn(4, 2))
        loader = torch.utils.data.DataLoader(data)
        for x, y in loader:
            optimizer.zero_grad()
            loss = nn.functional.mse_loss({model}(x), y)
            loss.backward()
            optimizer.step()"""),
        " " * 8,
    ).lstrip()


def spawned(before: str = "pass", count: str = "2", nprocs: str = "2") -> str:
    return SPAWNED.format(before=before, count=count, nprocs=nprocs)


def test_spawned_worker_runs_under_the_trainers_ddp() -> None:
    result = convert_source(spawned(nprocs="2"))
    assert result.loops_converted == 1 and not result.diagnostics
    code = result.code
    assert "def worker(world_size, epochs):" in code and "    worker(2, 3)\n" in code
    assert 'L.Trainer(max_epochs=epochs, strategy="ddp", devices=world_size)' in code
    for gone in (
        "mp.spawn",
        "init_process_group",
        "destroy_process_group",
        "DistributedDataParallel",
        "import torch.distributed",
        "import torch.multiprocessing",
    ):
        assert gone not in code
    assert "model = nn.Linear(4, 2)" in code


def test_process_count_as_a_number_or_every_gpu() -> None:
    assert "devices=4" in convert_source(spawned(count="2", nprocs="4")).code
    assert 'devices="auto"' in convert_source(spawned(count="2", nprocs="torch.cuda.device_count()")).code


def test_rank_read_before_fit_comes_from_the_launchers_local_rank() -> None:
    source = spawned(before='print("starting", rank)').replace(
        "    dist.destroy_process_group()\n", '    if rank == 0:\n        print("done")\n'
    )
    result = convert_source(source)
    assert result.loops_converted == 1 and not result.diagnostics
    code = result.code
    assert 'def worker(world_size, epochs):\n    rank = int(os.environ.get("LOCAL_RANK", 0))' in code
    assert "import os\n" in code and 'print("starting", rank)' in code
    assert "    if rank == 0:\n" in code  # after fit too: the worker has its rank


def test_rank_read_after_fit_only_is_the_trainers() -> None:
    source = spawned().replace(
        "    dist.destroy_process_group()\n", '    if rank == 0:\n        print("done")\n'
    )
    code = convert_source(source).code
    assert (
        "    if trainer.local_rank == 0:\n" in code and "LOCAL_RANK" not in code and "import os" not in code
    )


def test_spawn_of_an_unknown_count_is_not_converted() -> None:
    source = spawned(nprocs="len(hosts)")
    result = convert_source(source)
    assert result.loops_converted == 0
    assert {d.code for d in result.diagnostics} == {"LS009"}
    assert "mp.spawn(worker" in result.code and "loss.backward()" in result.code


def test_unconditional_data_parallel_gives_its_device_count() -> None:
    source = textwrap.dedent(f"""
        import argparse
        import torch
        import torch.nn as nn

        parser = argparse.ArgumentParser()
        parser.add_argument("--gpus", type=int, default=1)
        args = parser.parse_args()
        net = nn.DataParallel(nn.Linear(4, 2), device_ids=list(range(args.gpus)))
        {flat_loop("net")}
        torch.save(net.module.state_dict(), "net.pt")
    """)
    code = convert_source(source).code
    assert "net = nn.Linear(4, 2)\n" in code
    assert "devices=args.gpus" in code
    assert 'torch.save(net.state_dict(), "net.pt")' in code


def test_collective_before_fit_of_a_torchrun_script_is_a_todo() -> None:
    source = textwrap.dedent(f"""
        import torch
        import torch.distributed as dist
        import torch.nn as nn

        dist.init_process_group("nccl")
        rank = dist.get_rank()
        model = nn.Linear(4, 2)
        {flat_loop("model")}
        if dist.get_rank() == 0:
            torch.save(model.state_dict(), "model.pt")
    """)
    result = convert_source(source)
    assert [(d.code, d.span.line) for d in result.diagnostics] == [("LS009", 7)]
    assert 'strategy="ddp"' in result.code and "init_process_group" not in result.code
    assert "if dist.get_rank() == 0:" in result.code  # after fit the process group exists


def test_process_count_read_off_an_argument_the_worker_gets() -> None:
    source = (
        spawned(count="2", nprocs="2")
        .replace("def worker(rank, world_size, epochs):", "def worker(gpu, world_size, opts):")
        .replace("range(epochs)", "range(opts.epochs)")
        .replace("rank=rank", "rank=gpu")
        .replace(
            "mp.spawn(worker, args=(2, 3), nprocs=2)", "mp.spawn(worker, args=(2, args), nprocs=args.gpus)"
        )
    )
    code = convert_source(source).code
    assert 'strategy="ddp", devices=opts.gpus' in code and "worker(2, args)" in code


TRAIN_FUNCTION = """
import torch
import torch.distributed as dist
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler


def train(loader, model, optimizer, epoch, sampler):
    {in_train}
    for x, y in loader:
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()


def main(distributed):
    dist.init_process_group("gloo")
    data = TensorDataset(torch.randn(8, 4), torch.randn(8, 2))
    sampler = DistributedSampler(data)
    loader = DataLoader(data, batch_size=4, sampler=sampler)
    model = nn.parallel.DistributedDataParallel(nn.Linear(4, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(3):
        {in_epoch}
        train(loader, model, optimizer, epoch, sampler)
"""


def test_every_way_to_the_removed_sampler_goes_with_it() -> None:
    """set_epoch through the loader, under an isinstance check, in the per-epoch function the
    sampler is passed to, under a condition: Lightning steps its own sampler's epoch."""
    for in_train, in_epoch in [
        (
            "if isinstance(loader.sampler, DistributedSampler):\n        loader.sampler.set_epoch(epoch)",
            "pass",
        ),
        ("sampler.set_epoch(epoch)", "pass"),
        ("pass", "if distributed:\n            sampler.set_epoch(epoch)"),
        ("pass", "loader.sampler.set_epoch(epoch)"),
    ]:
        result = convert_source(TRAIN_FUNCTION.format(in_train=in_train, in_epoch=in_epoch))
        assert result.loops_converted == 1 and not result.diagnostics, in_train + in_epoch
        assert "sampler" not in result.code.replace("import DataLoader", ""), result.code
        assert "loader = DataLoader(data, batch_size=4, shuffle=True)" in result.code


def test_other_reads_of_the_removed_sampler_are_reported() -> None:
    result = convert_source(TRAIN_FUNCTION.format(in_train="print(len(loader.sampler))", in_epoch="pass"))
    assert [d.code for d in result.diagnostics] == ["LS009"]
    assert "`loader.sampler` reads the DistributedSampler" in result.diagnostics[0].message


def test_a_worker_also_called_directly_keeps_its_rank() -> None:
    """imagenet's launch: the spawn site passes the launcher's rank, the direct call stays as it was."""
    source = spawned().replace(
        'if __name__ == "__main__":\n    mp.spawn(worker, args=(2, 3), nprocs=2)',
        "def main(spawn, gpu):\n    if spawn:\n        mp.spawn(worker, args=(2, 3), nprocs=2)\n"
        "    else:\n        worker(gpu, 2, 3)\n",
    )
    result = convert_source(source)
    assert result.loops_converted == 1
    code = result.code
    assert "def worker(rank, world_size, epochs):" in code and 'LOCAL_RANK", 0))\n' not in code
    assert (
        '        worker(int(os.environ.get("LOCAL_RANK", 0)), 2, 3)\n' in code
        and "        worker(gpu, 2, 3)\n" in code
    )
    assert "import os\n" in code
    assert [(d.code, d.span.line) for d in result.diagnostics] == [("LS009", 28)]
    assert "devices=[gpu]" in result.diagnostics[0].message
