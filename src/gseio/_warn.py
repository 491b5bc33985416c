"""gseio's warnings, also recorded in the build report of the build that raised them."""

from __future__ import annotations

import contextlib
import contextvars
import warnings
from collections.abc import Iterator

from .errors import GseioWarning

_RECORD: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("gseio_warnings", default=None)


def warn(message: str, *, stacklevel: int = 2) -> None:
    """Warn with :class:`~gseio.errors.GseioWarning`, and record the message in the running build's report.

    Reader threads run in a copy of the build's context, so their warnings are recorded too.
    """
    record = _RECORD.get()
    if record is not None:
        record.append(message)
    warnings.warn(message, GseioWarning, stacklevel=stacklevel + 1)


@contextlib.contextmanager
def recording() -> Iterator[list[str]]:
    """Collect the messages :func:`warn` emits inside the block (they are still shown as usual)."""
    record: list[str] = []
    token = _RECORD.set(record)
    try:
        yield record
    finally:
        _RECORD.reset(token)
