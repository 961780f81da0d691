"""Many files spread over processes: lint and convert of a folder."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

Job = TypeVar("Job")
Outcome = TypeVar("Outcome")

PARALLEL_FROM = 17  # files; below that, starting processes costs more than it saves


class Interrupted(Exception):
    """Ctrl-C during in_order(..., interruptible=True): the jobs under way were finished, the others
    not started. `finished` holds the outcomes of those finished but not yielded yet."""

    def __init__(self, finished: list) -> None:
        super().__init__("interrupted")
        self.finished = finished


def in_order(
    work: Callable[[Job], Outcome],
    jobs: Sequence[Job],
    workers: int | None = None,
    interruptible: bool = False,
) -> Iterator[Outcome]:
    """work(job) for each job, yielded in the jobs' order (so output is the same from run to run),
    on every core when there are enough jobs to pay for the processes.

    interruptible: Ctrl-C lets the jobs under way finish (a file being written is written and said so)
    and then raises Interrupted; a second Ctrl-C interrupts at once."""
    workers = workers or os.cpu_count() or 1
    with deferred_interrupts(interruptible) as interrupt:
        if len(jobs) < PARALLEL_FROM or workers < 2:
            for job in jobs:
                if interrupt.is_set():
                    raise Interrupted([])
                yield work(job)
        else:
            yield from in_processes(work, jobs, workers, interrupt, interruptible)
        if interrupt.is_set():
            raise Interrupted([])


def in_processes(
    work: Callable[[Job], Outcome],
    jobs: Sequence[Job],
    workers: int,
    interrupt: threading.Event,
    interruptible: bool,
) -> Iterator[Outcome]:
    from concurrent.futures import ProcessPoolExecutor, wait  # multiprocessing: a few files never need it

    # small chunks: results come back often enough to show progress, yet cheaply
    size = max(1, min(8, len(jobs) // (workers * 8)))
    chunks = [list(jobs[start : start + size]) for start in range(0, len(jobs), size)]
    with ProcessPoolExecutor(workers, initializer=ignore_interrupts if interruptible else None) as pool:
        futures = [pool.submit(run_chunk, work, chunk) for chunk in chunks]
        for number, future in enumerate(futures):
            while not interrupt.is_set():
                if wait([future], timeout=0.2).done:
                    break
            if interrupt.is_set():
                rest = futures[number:]
                for pending in rest:
                    pending.cancel()
                wait(rest)  # the chunks under way finish: what they wrote is reported
                raise Interrupted(
                    [
                        outcome
                        for chunk in rest
                        if not chunk.cancelled() and chunk.exception() is None
                        for outcome in chunk.result()
                    ]
                )
            yield from future.result()


def run_chunk(work: Callable[[Job], Outcome], chunk: list) -> list:
    return [work(job) for job in chunk]


def ignore_interrupts() -> None:
    """In a worker process: Ctrl-C reaches the whole process group; the parent decides what stops."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextmanager
def deferred_interrupts(enabled: bool) -> Iterator[threading.Event]:
    """An event set by the first Ctrl-C, which raises nothing; the second raises KeyboardInterrupt."""
    interrupt = threading.Event()
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield interrupt
        return

    def handler(signum, frame) -> None:
        if interrupt.is_set():
            raise KeyboardInterrupt
        interrupt.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield interrupt
    finally:
        signal.signal(signal.SIGINT, previous)
