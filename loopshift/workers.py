"""Many files spread over processes: lint and convert of a folder."""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

Job = TypeVar("Job")
Outcome = TypeVar("Outcome")

PARALLEL_FROM = 17  # files; below that, starting processes costs more than it saves


def in_order(work: Callable[[Job], Outcome], jobs: Sequence[Job], workers: int | None = None) -> Iterator[Outcome]:
    """work(job) for each job, yielded in the jobs' order (so output is the same from run to run),
    on every core when there are enough jobs to pay for the processes."""
    workers = workers or os.cpu_count() or 1
    if len(jobs) < PARALLEL_FROM or workers < 2:
        yield from map(work, jobs)
        return
    from concurrent.futures import ProcessPoolExecutor  # multiprocessing: a few files never need it

    with ProcessPoolExecutor(workers) as pool:
        # small chunks: results come back often enough to show progress, yet cheaply
        yield from pool.map(work, jobs, chunksize=max(1, min(8, len(jobs) // (workers * 8))))
