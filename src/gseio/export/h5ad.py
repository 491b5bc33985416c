"""Write h5ad files atomically, in a way a failing write cannot crash the process.

HDF5 does not recover from a write that fails half-way (a full disk): the file cannot be
closed, its objects stay open, and when the process exits the library's clean-up
dereferences the half-closed file and crashes (a segmentation fault in ``H5FO_top_decr``
from ``H5_term_library``, after hundreds of lines of h5py errors). So on Linux the file is
written by a forked child process, which reports how it went through a pipe and ends
with ``os._exit`` (HDF5's clean-up never runs there); whatever happens to the child, the
caller gets an :class:`~gseio.errors.OutputError` and its own HDF5 library is untouched.
Elsewhere (no ``fork``), or for a backed AnnData, the file is written in the process.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pickle
import signal
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import OutputError
from ._atomic import atomic_outputs, system_error

if TYPE_CHECKING:
    from anndata import AnnData

_PR_SET_PDEATHSIG = 1


def write_h5ad(adata: AnnData, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write ``adata`` to ``path`` through a temporary file, so a crash leaves no partial file.

    Parameters
    ----------
    adata
        The data to write (e.g. from :func:`gseio.read_gse_dir`).
    path
        The ``.h5ad`` file to create.
    overwrite
        Replace an existing file (only once the new one is complete).

    Returns
    -------
    The path written.

    Raises
    ------
    ~gseio.errors.OutputError
        The file exists (and not ``overwrite``), its folder does not, or it cannot be
        written (a full disk, a read-only file system: the message says which).
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputError("exists already; pass overwrite=True to replace it", path=path)
    if not path.parent.is_dir():
        raise OutputError("the folder does not exist", path=path.parent)
    with atomic_outputs([path]) as (tmp,):
        _write(adata, tmp)
    return path


def _write(adata: AnnData, tmp: Path) -> None:
    if adata.isbacked or not hasattr(os, "fork") or not sys.platform.startswith("linux"):
        adata.write_h5ad(tmp)
        return
    # anndata's writer turns string columns into categoricals in place: the caller's object
    # changes as it always did, and the child has nothing left to change
    adata.strings_to_categoricals()
    if adata.raw is not None:
        adata.strings_to_categoricals(adata.raw.var)
    read_end, write_end = os.pipe()
    try:
        # h5py's global lock, held across the fork: another thread of the caller's inside h5py at that
        # moment would otherwise leave it locked forever in the child (which only has this thread)
        with _h5py_lock(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork in a threaded process: see above
            pid = os.fork()
    except OSError:  # no memory to fork (strict overcommit): write here
        os.close(read_end)
        os.close(write_end)
        adata.write_h5ad(tmp)
        return
    if pid == 0:  # pragma: no cover - the child (coverage does not follow it)
        os.close(read_end)
        _child(adata, tmp, write_end)
    os.close(write_end)
    _wait(pid, read_end, tmp)


def _h5py_lock() -> contextlib.AbstractContextManager[object]:
    try:
        from h5py._objects import phil
    except ImportError:  # pragma: no cover - a future h5py without it
        return contextlib.nullcontext()
    return phil


def _child(adata: AnnData, tmp: Path, pipe: int) -> None:  # pragma: no cover - runs in the forked child
    status = 1
    try:
        _die_with_parent()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)  # h5py's messages of a failing write: the parent reports the error once
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        adata.write_h5ad(tmp, convert_strings_to_categoricals=False)
        status = 0
    except BaseException as e:  # every failure goes back to the parent
        try:
            message = pickle.dumps(e)
        except Exception:  # one that does not pickle: its text
            message = pickle.dumps(OutputError(f"cannot be written: {type(e).__name__}: {e}", path=tmp))
        with contextlib.suppress(OSError):
            os.write(pipe, message)
    finally:
        os._exit(status)  # no interpreter shutdown: HDF5's exit handler must not run


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    """Ask Linux to kill this child when its parent dies (a killed build leaves no writer behind)."""
    import ctypes
    import ctypes.util

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _wait(pid: int, pipe: int, tmp: Path) -> None:
    """Collect the child's report and status; raise what it met (a system error as an :class:`OSError`)."""
    chunks = []
    try:
        with os.fdopen(pipe, "rb") as fh:
            chunks.append(fh.read())
        _, status = os.waitpid(pid, 0)
    except BaseException:  # Ctrl-C while waiting: stop the child too
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        raise
    report = b"".join(chunks)
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        return
    error: BaseException | None = None
    if report:
        with contextlib.suppress(Exception):
            error = pickle.loads(report)  # written by our own child a moment ago
    cause = None if error is None else system_error(error)
    if cause is not None:  # h5py's text spans lines of HDF5 internals: the system's words for it are enough
        raise OSError(cause.errno, cause.strerror, os.fspath(tmp)) from None
    if error is not None:
        raise error
    if os.WIFSIGNALED(status):
        raise OSError(errno.EIO, f"the h5ad writer was killed by signal {os.WTERMSIG(status)}", os.fspath(tmp))
    raise OSError(errno.EIO, "the h5ad writer failed", os.fspath(tmp))
