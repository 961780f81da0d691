"""The converter's diagnostic codes (LS0xx): what each means, why convert reports it, and what to do.

`loopshift convert` reports one of these where it could not do something safely: the code it is
about gets a `# TODO(loopshift): <reason> (LS0xx)` comment, and convert exits 1. The lint
rules (LS1xx, LS2xx) document themselves in their classes; these codes are documented here, for
`loopshift explain LS0xx` and `loopshift rules --all`. Plain data: importing this module imports
nothing else (the linter imports it on its fast path).

Where a code is emitted, the converter still spells it as a string literal; tests/test_codes.py
checks that every code emitted is listed here, and every one listed here is emitted.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass


@dataclass(frozen=True)
class ConverterCode:
    code: str
    name: str  # kebab-case, like a lint rule's
    title: str  # one line, for `loopshift rules --all` (a lint rule's summary)
    why: str  # what the converter could not do safely, and why
    example: str  # a script convert reports this code on
    what_to_do: str
    target: str = "lightning"  # the `--target` whose conversion reports it

    @property
    def command(self) -> str:
        return "loopshift convert" + ("" if self.target == "lightning" else f" --target {self.target}")

    def reported(self) -> str:
        """The line under the heading of `loopshift explain`, where a lint rule says whether it is fixable."""
        return (
            f"Reported by `{self.command}`, which marks the code with a "
            f"`# TODO(loopshift): <reason> ({self.code})` comment and exits 1."
        )

    def docs(self) -> str:
        """The documentation, in sections like a lint rule's (`loopshift explain CODE`)."""
        return "\n\n".join(
            [
                f"## What it means\n{self.title}.",
                f"## Why convert reports it\n{text(self.why)}",
                f"## Example\nWhat `{self.command}` reports {self.code} on:\n"
                f"```python\n{inspect.cleandoc(self.example)}\n```",
                f"## What to do\n{text(self.what_to_do)}",
            ]
        )


def text(paragraphs: str) -> str:
    return inspect.cleandoc(paragraphs)


LOOP_SHAPE = ConverterCode(
    "LS001",
    "loop-shape-not-understood",
    "A training loop whose shape convert does not understand",
    why="""
        Convert moves the body of a batch loop into `training_step` and hands the loop itself to the
        Trainer, which iterates a DataLoader once per epoch. It does that only for loops whose every
        run it can account for. It leaves alone: a batch loop over a call that is not a DataLoader
        (a one-pass generator would be empty from the second epoch on); an `enumerate()` target it
        does not understand; a loop inside a block it does not convert (an `if`, a `with`, a `try`,
        a `while`); a function holding the loop that is not called exactly once, as a statement;
        loops in nested functions or in methods of the model; batches held in a Python list (the
        Trainer takes a list for a list of loaders) or rebuilt every epoch (the Trainer
        iterates the one loader it was given); several training loops in one epoch
        loop; and a step loop that does not draw `batch = next(it)` with a restart on StopIteration
        (or from `itertools.cycle`) up to a fixed number of steps. An update (backward() and an
        optimizer step) in a function that a loop calls, other than a `train()` holding the batch
        loop itself (`finish_episode()` after each rollout, `_run_batch()` from `_run_epoch()`), is
        reported at the backward() call: such loops are not followed yet.
        """,
    example="""
        import torch

        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)


        def batches():
            for _ in range(2):
                yield torch.randn(4, 4), torch.randn(4, 1)


        for epoch in range(3):
            for x, y in batches():
                optimizer.zero_grad()
                loss = torch.nn.functional.mse_loss(model(x), y)
                loss.backward()
                optimizer.step()
        """,
    what_to_do="""
        Restructure the loop into one convert takes: iterate a `DataLoader` (or a list of batches),
        put the loop at module level or in a function called once, outside other blocks. Or run
        `loopshift convert --target fabric`, which keeps the loop as written and lets Lightning
        Fabric run it (convert prints a `hint:` line when that target converts the file without
        TODOs). Or accept the TODO: the loop stays plain PyTorch and trains as before.
        """,
)

STEPPING = ConverterCode(
    "LS002",
    "stepping-not-expressible",
    "Optimizer stepping that Lightning's optimization cannot express",
    why="""
        Under automatic optimization Lightning calls `zero_grad()`, `backward()` and `step()` itself,
        around `training_step`. A loop that steps in a way the Trainer cannot repeat exactly (a step
        under a condition, several optimizers or backward calls, code that reads the gradients
        before the step) is converted under manual optimization, in the user's order, without a
        TODO. Convert reports LS002 where neither holds the loop: `backward()` under a condition or
        a `with` block of its own; an LBFGS loop with code outside the closure (Lightning's training
        step is the closure, which the optimizer may evaluate several times per step: that code
        would run as often); and a loop that needs manual optimization but cannot have it, such as
        a `GradScaler` used for more than scaling the loss and stepping (`scaler.unscale_`), or
        steps convert cannot trace to a `torch.optim` optimizer. The message says which.
        """,
    example="""
        import torch

        x, y = torch.randn(64, 4), torch.randn(64, 1)
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.LBFGS(model.parameters(), max_iter=5)

        for step in range(10):
            def closure():
                optimizer.zero_grad()
                loss = torch.nn.functional.mse_loss(model(x), y)
                loss.backward()
                return loss

            optimizer.step(closure)
            print(step, torch.nn.functional.mse_loss(model(x), y).item())
        """,
    what_to_do="""
        Where you can, restructure: `backward()` as a plain statement of the batch loop (skip a
        batch with `continue` before it instead), code that evaluates the model moved out of an
        LBFGS loop (after training, or into an evaluation loop convert turns into
        `validation_step`). Or run `loopshift convert --target fabric`, which keeps the stepping
        as written. Or accept the TODO: the loop stays plain PyTorch.
        """,
)

EARLY_EXIT = ConverterCode(
    "LS003",
    "early-exit-not-converted",
    "A `break`, `continue` or `return` with no exact Lightning form",
    why="""
        A hook cannot leave the Trainer's loop with `break`. Convert gives each early exit its exact
        Lightning form where there is one: `continue` before backward skips the batch
        (`training_step` returns None), `break` after the optimizer step ends the epoch
        (`on_train_batch_start` returns -1), `break` out of the epoch loop stops training
        (`self.trainer.should_stop = True`). An exit anywhere else, such as a `break` between the
        forward pass and the optimizer step, would skip part of a step Lightning has already begun:
        the rest of the loop is converted, and the exit becomes `pass` with this TODO, so the
        converted code no longer ends the loop early.
        """,
    example="""
        import torch
        from torch.utils.data import DataLoader, TensorDataset

        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        loader = DataLoader(TensorDataset(torch.randn(8, 4), torch.randn(8, 1)), batch_size=4)

        for epoch in range(3):
            for x, y in loader:
                optimizer.zero_grad()
                loss = torch.nn.functional.mse_loss(model(x), y)
                if torch.isnan(loss):
                    break
                loss.backward()
                optimizer.step()
        """,
    what_to_do="""
        Move the exit to where it has an exact form (after `optimizer.step()`, or a `continue`
        before `backward()`), or end training from a callback (`EarlyStopping`, or
        `self.trainer.should_stop = True` in a hook). Or run `loopshift convert --target fabric`,
        which keeps the loop and its exits as written. Or accept the TODO: the converted loop runs
        the whole epoch.
        """,
)

USED_OUTSIDE = ConverterCode(
    "LS005",
    "optimizer-used-outside-training",
    "The optimizer or scheduler used outside the training code",
    why="""
        After conversion the Trainer builds the optimizer and the schedulers (in
        `configure_optimizers`) and steps them; the script's own objects no longer exist. Reads
        after `trainer.fit` in the same function become `trainer.optimizers[0]` and
        `trainer.lr_scheduler_configs[i].scheduler`, the objects Lightning trained. A use anywhere
        else (before the loop, in another function) has no such object to read: convert marks it.
        The same holds for any variable the loop leaves behind: code after training reads it from
        the trained module (`lit_model.best_state`) where it sees the loop's value, keeps its own
        where the script rebinds the name first, and is marked where a rebinding may or may not
        run (under an `if`, in a loop) before the read.
        """,
    example="""
        import torch
        from torch.utils.data import DataLoader, TensorDataset

        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        loader = DataLoader(TensorDataset(torch.randn(8, 4), torch.randn(8, 1)), batch_size=4)
        print("learning rate", optimizer.param_groups[0]["lr"])

        for epoch in range(3):
            for x, y in loader:
                optimizer.zero_grad()
                loss = torch.nn.functional.mse_loss(model(x), y)
                loss.backward()
                optimizer.step()
        """,
    what_to_do="""
        Move the use after `trainer.fit`, where it reads `trainer.optimizers` /
        `trainer.lr_scheduler_configs`, or into a hook of the LightningModule
        (`self.optimizers()`, `self.lr_schedulers()`); or read what it needs from the script's own
        values (the learning rate it was given). Or accept the TODO and change that code by hand.
        """,
)

EPOCH_LOOP = ConverterCode(
    "LS006",
    "epoch-loop-not-understood",
    "An epoch loop convert does not understand",
    why="""
        The epoch loop becomes `Trainer(max_epochs=E)`, and the code before and after the batch
        loop becomes `on_train_epoch_start` / `on_train_epoch_end`. That holds for
        `for epoch in range(E)` or `range(start, stop)` with no `else` block, and for an optimizer
        built once: Lightning builds it once, in `configure_optimizers`. An epoch loop over anything
        else, one with an `else` block, or one that builds the optimizer anew every epoch (resetting
        its state) is left as it was.
        """,
    example="""
        import torch
        from torch.utils.data import DataLoader, TensorDataset

        model = torch.nn.Linear(4, 1)
        loader = DataLoader(TensorDataset(torch.randn(8, 4), torch.randn(8, 1)), batch_size=4)

        for epoch in range(3):
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1 / (epoch + 1))
            for x, y in loader:
                optimizer.zero_grad()
                loss = torch.nn.functional.mse_loss(model(x), y)
                loss.backward()
                optimizer.step()
        """,
    what_to_do="""
        Write the epoch loop as `for epoch in range(E):`; build the optimizer once, before it, and
        change the learning rate with a scheduler (`LambdaLR`, `StepLR`), which convert moves into
        `configure_optimizers`. Or run `loopshift convert --target fabric`, which keeps the loop as
        written. Or accept the TODO: the loop stays plain PyTorch.
        """,
)

PARTIAL_ACCUMULATION = ConverterCode(
    "LS007",
    "partial-accumulation",
    "Gradient accumulation that differs from Lightning's at the end of an epoch",
    why="""
        `if (i + 1) % N == 0: optimizer.step()` becomes `Trainer(accumulate_grad_batches=N)`, and
        the loop is converted. Lightning also steps after the last batch of every epoch; the script
        did not, so when the batches per epoch are not a multiple of N, the gradients of the last
        few batches were carried over into the next epoch's first step, and now they are stepped at
        the end of the epoch. Convert cannot know the number of batches, so it says so in a TODO
        above the Trainer.
        """,
    example="""
        import torch
        from torch.utils.data import DataLoader, TensorDataset

        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        loader = DataLoader(TensorDataset(torch.randn(20, 4), torch.randn(20, 1)), batch_size=4)

        for epoch in range(3):
            for i, (x, y) in enumerate(loader):
                loss = torch.nn.functional.mse_loss(model(x), y) / 2
                loss.backward()
                if (i + 1) % 2 == 0:
                    optimizer.step()
                    optimizer.zero_grad()
        """,
    what_to_do="""
        When the batches per epoch are a multiple of N, nothing differs: delete the TODO. Otherwise
        accept Lightning's behaviour (a step on the partial accumulation at the end of each epoch),
        or make the script step there too (`if (i + 1) % N == 0 or i + 1 == len(loader):`), which
        convert then takes without a TODO.
        """,
)

FABRIC_SETUP = ConverterCode(
    "LS008",
    "fabric-setup-not-possible",
    "Code the Fabric target cannot set up or reach",
    why="""
        With `--target fabric` the loop stays as written: `fabric = L.Fabric(...)` is built once,
        on every path of the training code's function (never in one branch of an `if`), and
        `fabric.setup(model, optimizer)` wraps each model together with its optimizers, where the
        optimizer is built. Where the optimizer is built on only some of the paths that built the
        model (`if args.use_optimizer:`, an epoch loop), the model is set up where those paths
        join (`fabric.setup_module`) and the optimizer where it is built
        (`fabric.setup_optimizers`); optimizers built in the two branches of one `if` are each set
        up with the model of their branch. `loss.backward()` becomes `fabric.backward(loss)`,
        which needs `fabric` in scope. Convert reports code where that cannot be done: a loop with
        no `torch.optim` optimizer (parameters updated by hand: `fabric.setup` has nothing to
        take, and under DDP the gradients would not be synchronized); code `fabric` cannot be
        passed to (a function used as a callback, a nested function: its `backward()` stays as it
        was); a model bound outside the code that builds its optimizer; a model with optimizers
        built in different blocks that one run may both reach (setting the model up twice fails).
        """,
    example="""
        import torch

        model = torch.nn.Linear(4, 1)
        x, y = torch.randn(8, 4), torch.randn(8, 1)

        for step in range(10):
            loss = torch.nn.functional.mse_loss(model(x), y)
            model.zero_grad()
            loss.backward()
            with torch.no_grad():
                for p in model.parameters():
                    p -= 0.1 * p.grad
        """,
    what_to_do="""
        Use the default target (`--target lightning`), which converts hand-written updates under
        manual optimization; or build a `torch.optim` optimizer, beside the model, in the function
        that trains it, and call the training code directly rather than through a callback or a
        nested function. Or accept the TODO: that code runs without Fabric.
        """,
    target="fabric",
)

PROCESSES = ConverterCode(
    "LS009",
    "processes-not-handed-over",
    "Processes the script starts itself that cannot be handed over to Lightning",
    why="""
        The Trainer starts and sets up the processes of distributed training itself (in `fit`).
        Convert hands `mp.spawn(worker, args=(...), nprocs=N)` over to `Trainer(strategy="ddp",
        devices=N)` when `worker` is a function of this file, `args` a tuple matching its parameters
        after the rank, and N one of those arguments, a number, or the GPU count; otherwise the
        training in those processes is not converted. A `torch.distributed` call that runs before
        `fit` (`dist.get_rank()`, `dist.barrier()`) finds no process group yet: the loop is
        converted and the call marked. A read of the DistributedSampler the conversion removes,
        other than its `set_epoch` (also through `loader.sampler`, or under `if isinstance(...,
        DistributedSampler)`), which go with it, is marked too; so is a direct call of a spawned
        worker (`else: main_worker(args.gpu, ...)`), which now runs the Trainer's processes too (the
        spawn site passes the launcher's LOCAL_RANK). With `--target fabric`, `mp.spawn` is not
        converted: each process would launch Fabric's own.
        """,
    example="""
        import torch
        import torch.distributed as dist
        import torch.multiprocessing as mp
        from torch.utils.data import DataLoader, TensorDataset


        def worker(rank, world_size):
            dist.init_process_group("gloo", rank=rank, world_size=world_size)
            model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(4, 1))
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            loader = DataLoader(TensorDataset(torch.randn(8, 4), torch.randn(8, 1)), batch_size=4)
            for epoch in range(3):
                for x, y in loader:
                    optimizer.zero_grad()
                    loss = torch.nn.functional.mse_loss(model(x), y)
                    loss.backward()
                    optimizer.step()


        if __name__ == "__main__":
            hosts = ["a", "b"]
            mp.spawn(worker, args=(2,), nprocs=len(hosts))
        """,
    what_to_do="""
        Spawn a function of this file with an `args=` tuple that holds the process count, and pass
        that as `nprocs`; move `torch.distributed` calls that run before training after
        `trainer.fit`, or into the LightningModule's hooks (`self.global_rank`,
        `self.trainer.strategy.barrier()`). With `--target fabric`, use `--target lightning`, which
        converts `mp.spawn`. Or accept the TODO.
        """,
)

UNDEFINED_AFTER_CONVERSION = ConverterCode(
    "LS010",
    "name-left-undefined",
    "The converted code reads a name it no longer defines",
    why="""
        Before it returns, convert compiles its output and compares the names it reads as globals
        with the input's: a name the input defined and the output reads without defining is a
        NameError waiting for the line that reads it. That happens when a variable of the moved
        training code (a loop variable, a local of the removed train() function) is still read by
        code that stays, in a shape the converter does not carry over to the module. Convert marks
        each such read rather than calling the file converted.
        """,
    example="""
        import torch

        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        data = [(torch.randn(4, 4), torch.randn(4, 1)) for _ in range(4)]
        loader = torch.utils.data.DataLoader(data, batch_size=None)

        for xb, yb in loader:
            xb = xb * 2
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(model(xb), yb)
            loss.backward()
            optimizer.step()
        print(xb.shape)
        """,
    what_to_do="""
        Read the value from the trained module after fit (`lit_model.<name>`, set in the hook that
        computes it), compute it again after training, or keep the loop with `--target fabric`.
        """,
)

INTERRUPT_HANDLER = ConverterCode(
    "LS011",
    "interrupt-handled-by-lightning",
    "A Ctrl-C handler around the training that no longer runs",
    why="""
        `try: <training> except KeyboardInterrupt: ...` lets a script stop training early and go on
        (evaluate, save). Lightning's `fit` catches KeyboardInterrupt itself: it shuts down
        gracefully and then exits the process with `sys.exit(1)`, so the handler never sees the
        interrupt and the code after it does not run. Convert converts the loop and marks the
        handler.
        """,
    example="""
        import torch
        from torch.utils.data import DataLoader, TensorDataset

        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        loader = DataLoader(TensorDataset(torch.randn(8, 4), torch.randn(8, 1)), batch_size=4)

        try:
            for epoch in range(3):
                for x, y in loader:
                    optimizer.zero_grad()
                    loss = torch.nn.functional.mse_loss(model(x), y)
                    loss.backward()
                    optimizer.step()
        except KeyboardInterrupt:
            print("Exiting from training early")
        print("evaluating", model.weight.sum().item())
        """,
    what_to_do="""
        Catch `SystemExit` as well (`except (KeyboardInterrupt, SystemExit):`), or move what the
        handler does into a callback's `on_exception` hook; or keep the loop with `--target fabric`.
        """,
)

CODES: tuple[ConverterCode, ...] = (
    LOOP_SHAPE,
    STEPPING,
    EARLY_EXIT,
    USED_OUTSIDE,
    EPOCH_LOOP,
    PARTIAL_ACCUMULATION,
    FABRIC_SETUP,
    PROCESSES,
    UNDEFINED_AFTER_CONVERSION,
    INTERRUPT_HANDLER,
)
BY_CODE = {entry.code: entry for entry in CODES}


def lookup(code_or_name: str) -> ConverterCode | None:
    """The entry for a code (`LS002`, any case) or a name (`stepping-not-expressible`)."""
    return BY_CODE.get(code_or_name.upper()) or next(
        (e for e in CODES if e.name == code_or_name.lower()), None
    )
