"""Crash-safe writes: write under a temporary name in the same folder, fsync, rename.

A reader of the folder sees either no file or the complete file under its final
name, never a half-written file that looks complete. A write that fails for a reason of
the system (a full disk, a read-only file system, no permission) is an
:class:`~gseio.errors.OutputError` naming the final file, not the temporary one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

from ..errors import OutputError

#: What to do about the system errors writing an output meets most.
_HINTS = {
    errno.ENOSPC: "the disk is full: free some space or write the outputs elsewhere (-o)",
    errno.EDQUOT: "the disk quota is exhausted: free some space or write the outputs elsewhere (-o)",
    errno.EROFS: "the file system is read-only: write the outputs elsewhere (-o)",
    errno.EACCES: "permission denied: write the outputs to a folder you can write to (-o)",
    errno.EPERM: "operation not permitted: write the outputs to a folder you can write to (-o)",
    errno.EFBIG: "the file is too large for this file system: write the outputs elsewhere (-o)",
}

#: System errors only writing meets: one of them escaping a build is about the outputs, never the inputs.
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG})


def output_error(error: OSError, path: str | os.PathLike[str]) -> OutputError:
    """The :class:`~gseio.errors.OutputError` for a system error met while writing ``path``."""
    hint = _HINTS.get(error.errno or 0)
    what = error.strerror or str(error)
    return OutputError(f"cannot be written: {what}" + (f"; {hint}" if hint else ""), path=path)


_HDF5_ERRNO = re.compile(r"\berrno = (\d+)")


def system_error(error: BaseException) -> OSError | None:
    """The system error behind ``error``, in plain words; ``None`` when it is not one.

    h5py reports a failed write as an :class:`OSError` whose text spans lines of HDF5
    internals, or as a :class:`RuntimeError` that only mentions ``errno = 28`` in its text.
    """
    code = error.errno if isinstance(error, OSError) else None
    if not code and isinstance(error, OSError | RuntimeError):
        match = _HDF5_ERRNO.search(str(error))
        code = int(match[1]) if match else None
    return OSError(code, os.strerror(code)) if code else None


def disk_full(error: BaseException | None) -> bool:
    """Whether ``error``, or what caused it, is a full disk (or quota)."""
    while error is not None:
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        error = error.__cause__
    return False


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def temporary_name(final: Path) -> Path:
    """A hidden sibling of ``final`` that keeps its suffix (some writers look at it)."""
    return final.with_name(f".{final.stem}.tmp-{uuid.uuid4().hex[:12]}{final.suffix}")


def _final_of(error: OSError, temps: list[Path], finals: Sequence[Path]) -> Path:
    """The output a system error concerns: the one whose temporary file it names, else the first."""
    named = os.fspath(error.filename) if isinstance(error.filename, str | os.PathLike) else None
    for tmp, final in zip(temps, finals, strict=True):
        if named == os.fspath(tmp):
            return Path(final)
    return Path(finals[0])


@contextlib.contextmanager
def atomic_outputs(finals: Sequence[Path]) -> Iterator[list[Path]]:
    """Yield temporary paths for ``finals``; on success move them all into place.

    If the body raises, every temporary file is removed and no final file is touched. A
    system error (:class:`OSError`) of the body or of the moves is raised as an
    :class:`~gseio.errors.OutputError` naming the final file concerned.
    """
    temps = [temporary_name(Path(f)) for f in finals]
    try:
        yield temps
        for tmp in temps:
            if not tmp.exists():
                raise OutputError("the writer did not create it", path=finals[temps.index(tmp)])
            _fsync_path(tmp)
    except BaseException as e:
        for tmp in temps:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise output_error(e, _final_of(e, temps, finals)) from e
        raise
    for i, (tmp, final) in enumerate(zip(temps, finals, strict=True)):
        try:
            os.replace(tmp, final)
        except OSError as e:
            for left in temps[i:]:
                with contextlib.suppress(OSError):
                    left.unlink(missing_ok=True)
            raise output_error(e, final) from e
    for folder in {Path(f).parent for f in finals}:
        with contextlib.suppress(OSError):
            _fsync_path(folder)
