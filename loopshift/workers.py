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

    interruptible: Ctrl-C stops the jobs under way at once, but lets one that has begun to write
    finish (what it wrote is written whole and said so), then raises Interrupted; a second Ctrl-C
    interrupts at once."""
    workers = workers or os.cpu_count() or 1
    with deferred_interrupts(interruptible) as interrupt:
        if len(jobs) < PARALLEL_FROM or workers < 2:
            for job in jobs:
                if interrupt.is_set():
                    raise Interrupted([])
                done = stoppable(work, job)
                if not done:
                    raise Interrupted([])
                yield done[0]
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
    with ProcessPoolExecutor(workers, initializer=stop_on_interrupt if interruptible else None) as pool:
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
    done = []
    for job in chunk:
        outcome = stoppable(work, job)
        if not outcome:
            break
        done += outcome
    return done


class Stop(KeyboardInterrupt):
    """Ctrl-C while a job may stop: it has not begun to write."""


may_stop = threading.Event()  # set while the job under way has written nothing
stopped = threading.Event()  # set once Ctrl-C came: the jobs not begun are not begun


def stoppable(work: Callable[[Job], Outcome], job: Job) -> list[Outcome]:
    """[work(job)], or [] when Ctrl-C stops it before it calls `writing()`."""
    if stopped.is_set():
        return []
    try:
        may_stop.set()
        return [work(job)]
    except Stop:
        return []
    finally:
        may_stop.clear()


def writing() -> None:
    """Said by a job before it writes a file: Ctrl-C now lets it finish."""
    may_stop.clear()


def stop_on_interrupt() -> None:
    """In a worker process (Ctrl-C reaches the whole process group): stop the job under way unless
    it writes, and begin no other; the parent reports what was done."""

    def handler(signum, frame) -> None:
        stopped.set()
        if may_stop.is_set():
            raise Stop

    signal.signal(signal.SIGINT, handler)


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
        if may_stop.is_set():
            raise Stop

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield interrupt
    finally:
        signal.signal(signal.SIGINT, previous)
