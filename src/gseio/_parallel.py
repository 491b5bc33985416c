"""Threads of a build.

An ordered, bounded parallel map (the readers' C parts release the GIL), and a module
imported in the background while the readers work.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import os
import sys
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
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


def _import_quietly(module: str) -> None:
    with contextlib.suppress(Exception):  # the caller's own import raises it properly
        importlib.import_module(module)


@contextlib.contextmanager
def importing_in_background(module: str) -> Iterator[None]:
    """Import ``module`` on a thread while the block runs (e.g. anndata, ~0.25 s, during parsing).

    The thread is always joined before the block is left, also when the block raises: a thread
    still importing C extensions while the interpreter shuts down (a build that stops at its
    first bad file, then exits) can crash the process with a segmentation fault.
    """
    if module in sys.modules:
        yield
        return
    thread = threading.Thread(target=_import_quietly, args=(module,), name=f"gseio-import-{module}")
    thread.start()
    try:
        yield
    finally:
        thread.join()
