"""HDF5 inputs: refused when they reach outside themselves, and typed errors for damaged files.

An HDF5 file can keep a dataset's bytes in other files: *external storage* (raw bytes of
any file, at any offset), *virtual datasets* (slices of datasets in other HDF5 files) and
*external links* (objects of another file). Reading such a dataset reads whatever file
it names, so :func:`check_self_contained` refuses the file
(:class:`~gseio.errors.UnsafeInputError`) before any data is read. It visits every link
and every object header of the file, never a dataset's data, so it is cheap for big
files. :func:`gseio._open.open_hdf5`, which every HDF5 reader and sniffer opens files
with, runs it.

A damaged HDF5 file fails in h5py with whatever the HDF5 library met first: ``OSError``
("bad global heap collection signature"), ``RuntimeError`` ("bad local heap signature"),
``KeyError`` ("message size exceeds buffer end"), ``ValueError``, ``TypeError``. The HDF5
readers read inside :func:`reading`, so a damaged file is a typed error that names it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .._source import printable
from ..errors import CorruptFileError, FormatError, GseioError, UnsafeInputError

__all__ = ["H5PY_ERRORS", "check_self_contained", "reading"]

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


_ADVICE = ("gseio never reads outside its input, so the file is refused before any data is read; ask for a "
           "self-contained file (h5repack copies external data in)")  # fmt: skip


def _problem(f: Any, name: bytes, info: Any) -> str | None:
    """What in the link ``name`` (and the object it leads to) reaches outside the file, or ``None``."""
    import h5py

    where = "/" + printable(name.decode("utf-8", "surrogateescape"))
    if info.type == h5py.h5l.TYPE_SOFT:  # a path inside this file: what it names is visited on its own
        return None
    if info.type == h5py.h5l.TYPE_EXTERNAL:
        file, target = (printable(v.decode("utf-8", "surrogateescape")) for v in f.id.links.get_val(name))
        return f"{where} is an external link to {target} in the file {file!r}"
    if info.type != h5py.h5l.TYPE_HARD:
        return f"{where} is a user-defined link (type {info.type}), which may lead to another file"
    obj = h5py.h5o.open(f.id, name)
    if not isinstance(obj, h5py.h5d.DatasetID):
        return None
    plist = obj.get_create_plist()
    if plist.get_layout() == h5py.h5d.VIRTUAL:
        files = sorted({printable(plist.get_virtual_filename(i)) for i in range(plist.get_virtual_count())})
        return f"dataset {where} is a virtual dataset whose data come from {', '.join(map(repr, files))}"
    if plist.get_external_count():
        file = printable(plist.get_external(0)[0].decode("utf-8", "surrogateescape"))
        return f"dataset {where} keeps its data in the outside file {file!r} (HDF5 external storage)"
    return None


def check_self_contained(f: Any, source: object) -> None:
    """Refuse an open HDF5 file whose data may lie in other files (see the module notes).

    Every link of the file is visited (each object once, loops included), and each
    dataset's creation properties read: object headers only, never data.

    Raises
    ------
    ~gseio.errors.UnsafeInputError
        A dataset uses external storage or is virtual, or a link is external or user-defined;
        the message names the dataset (or link) and the file it points to.
    ~gseio.errors.CorruptFileError
        A link or object header is damaged: the file cannot be checked, so it is not read.
    """
    found: list[str] = []
    failed: list[BaseException] = []

    def visit(name: bytes, info: Any) -> int | None:
        try:
            problem = _problem(f, name, info)
        except H5PY_ERRORS as e:  # h5py cannot carry an exception out of a visit (SystemError): carry it here
            failed.append(e)
            return 1
        if problem is not None:
            found.append(problem)
            return 1  # stop at the first: one is enough to refuse the file
        return None

    try:
        f.id.links.visit(visit, info=True)
    except H5PY_ERRORS as e:
        failed.append(e)
    if found:
        raise UnsafeInputError(f"{found[0]}: {_ADVICE}", path=source)
    if failed:  # a part of the file could not be checked: it is not read either
        error = failed[0]
        raise CorruptFileError(f"cannot be read as HDF5 (a damaged file?): {error}", path=source) from error
