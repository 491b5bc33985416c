"""Ordered, bounded parallel map on threads (the readers' C parts release the GIL)."""

from __future__ import annotations

import contextvars
import os
from collections import deque
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def resolve_jobs(n_jobs: int | None, n_files: int) -> int:
    if n_jobs is None:
        n_jobs = os.cpu_count() or 1
    elif n_jobs < 1:
        n_jobs = max(1, (os.cpu_count() or 1) + 1 + n_jobs)  # joblib style: -1 = all cores
    return max(1, min(n_jobs, n_files))


def ordered_map(fn: Callable[[T], R], items: Sequence[T], *, n_jobs: int) -> Generator[R, None, None]:
    """``map(fn, items)`` on ``n_jobs`` threads, in order, with a bounded number of results in flight.

    Decompression (ISA-L, zlib) and Arrow's parser release the GIL, so threads overlap the heavy
    work without copying pieces between processes. Each task runs in a copy of the caller's
    context, so that context variables (e.g. :func:`gseio._open.expansion_limit`) reach the threads.
    """
    if n_jobs == 1:
        yield from map(fn, items)
        return
    window = 2 * n_jobs  # enough to keep every thread busy; each result in flight costs memory
    with ThreadPoolExecutor(max_workers=n_jobs, thread_name_prefix="gseio-read") as pool:
        pending: deque[Future[R]] = deque()
        try:
            for item in items:
                # a copy per task: one context cannot be entered by two threads at once
                pending.append(pool.submit(contextvars.copy_context().run, fn, item))
                if len(pending) >= window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:  # on an early exit (error, generator closed), drop work not started yet
            for future in pending:
                future.cancel()
