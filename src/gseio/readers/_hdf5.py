"""One place where h5py's errors on damaged HDF5 files become :class:`~gseio.errors.CorruptFileError`.

A damaged HDF5 file fails in h5py with whatever the HDF5 library met first: ``OSError``
("bad global heap collection signature"), ``RuntimeError`` ("bad local heap signature"),
``KeyError`` ("message size exceeds buffer end"), ``ValueError``, ``TypeError``. The HDF5
readers read inside :func:`reading`, so a damaged file is a typed error that names it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import CorruptFileError, FormatError, GseioError

__all__ = ["H5PY_ERRORS", "reading"]

#: What h5py raises when the HDF5 library cannot make sense of a file (MemoryError: a damaged dataspace
#: that claims billions of elements).
H5PY_ERRORS: tuple[type[BaseException], ...] = (
    OSError, RuntimeError, KeyError, ValueError, TypeError, IndexError, MemoryError,
)  # fmt: skip


@contextmanager
def reading(source: object) -> Iterator[None]:
    """Turn h5py's errors raised inside the block into :class:`CorruptFileError` naming ``source``.

    gseio's own errors pass through unchanged (``InvalidValueError`` is also a ``ValueError``); a
    ``KeyError`` for an object that does not exist is a :class:`FormatError` (a sound file of
    another layout), any other a :class:`CorruptFileError`.
    """
    try:
        yield
    except GseioError:
        raise
    except KeyError as e:
        if "doesn't exist" in str(e):  # the file is sound, a dataset or group the format needs is not there
            raise FormatError(f"a dataset this format needs is missing: {e}", path=source) from e
        raise CorruptFileError(f"cannot be read as HDF5 (a damaged file?): {e}", path=source) from e
    except H5PY_ERRORS as e:
        raise CorruptFileError(f"cannot be read as HDF5 (a damaged file?): {e}", path=source) from e
