"""What ``gseio build`` checks about its output folder before it reads a single input, and what it replaces.

A build that cannot publish should fail in a second, not after an hour: the h5ad's name
must be a plain file name, one build at a time may write a folder (an exclusive lock
beside it), gseio's cache folder must be a folder, and the outputs must fit in the free
space of the output file system.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path

from .errors import OutputError
from .export._atomic import output_error

#: The lock of OUTDIR is ``.<OUTDIR name>.gseio-lock`` beside it (inside it when the parent is read-only).
LOCK_SUFFIX = ".gseio-lock"
#: Longest file name (in bytes) most file systems allow.
NAME_MAX = 255
#: Margin on top of the computed output sizes: the report, directory entries, rounding to blocks.
SPACE_MARGIN = 1 << 20


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be an output file's name (a plain, visible name in the output folder), or ``None``."""
    if not name:
        return "it is empty"
    if name in (".", ".."):
        return f"{name!r} is not a file name"
    for char in name:
        if char in "/\\\0":
            return f"it holds {char!r}: the name of a file inside OUTDIR, without a folder, is needed"
        category = unicodedata.category(char)
        if category in ("Cc", "Cs", "Zl", "Zp"):  # control characters, undecodable bytes, line breaks
            return f"it holds the control character {char!r}"
    if name.startswith("."):
        return "it starts with '.', which hides the file"
    if len(os.fsencode(name)) > NAME_MAX:
        return f"it is longer than {NAME_MAX} bytes"
    return None


def h5ad_file_name(name: str) -> str:
    """The h5ad's file name for ``--name`` (``.h5ad`` added unless there); ``ValueError`` says why not."""
    file_name = name if name.endswith(".h5ad") else f"{name}.h5ad"
    problem = name_problem(name) or name_problem(file_name)
    if problem is not None:
        raise ValueError(f"{name!r} cannot name the h5ad: {problem}")
    return file_name


def _holder(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 64).decode("ascii").strip()
        if text.isdigit():
            return f"pid {text}"
    return "pid unknown"


def _try_lock(path: Path, outdir: Path) -> int | None:
    """The locked file's descriptor; ``None`` when the holder before us removed it (try again)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise OutputError(
            f"another gseio build ({holder}) is writing {outdir}; wait for it to finish, or choose another "
            "output folder (-o)",
            path=outdir,
        ) from None
    try:
        current = os.stat(path, follow_symlinks=False).st_ino
    except FileNotFoundError:
        current = None
    if current != os.fstat(fd).st_ino:  # unlinked by its holder as it finished: that lock guards nothing
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def _lock(path: Path, outdir: Path) -> int:
    for _ in range(100):  # each round lost means another build finished meanwhile
        fd = _try_lock(path, outdir)
        if fd is not None:
            return fd
    raise OutputError(f"cannot lock {path}: other builds keep taking it; try again", path=outdir)


@contextlib.contextmanager
def outdir_lock(outdir: Path) -> Iterator[Path]:
    """Hold an exclusive lock on ``outdir`` for the body (``fcntl.flock`` on a lock file beside it).

    The lock file is ``.<name>.gseio-lock`` in ``outdir``'s parent, so it is never part of
    the outputs; inside ``outdir`` when the parent cannot be written. It is removed when
    the lock is released.

    Raises
    ------
    ~gseio.errors.OutputError
        Another process holds the lock (the message names its pid), or no lock file can
        be created beside ``outdir`` nor inside it.
    """
    outdir = Path(os.path.realpath(outdir))  # one lock for every name of the folder
    try:
        outdir.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise output_error(e, outdir.parent) from e
    failure: OSError | None = None
    for path in (outdir.parent / f".{outdir.name}{LOCK_SUFFIX}", outdir / LOCK_SUFFIX):
        try:
            fd = _lock(path, outdir)
            break
        except OSError as e:  # a parent that cannot be written: inside the folder
            failure = failure or e  # the reason beside it is the one to tell
    else:
        raise output_error(failure or OSError(errno.EIO, "no lock"), outdir)
    try:
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)  # before closing: whoever opens the old file sees it was removed
        os.close(fd)


def free_bytes(folder: Path) -> int:
    """Bytes an unprivileged process may still write on ``folder``'s file system."""
    info = os.statvfs(folder)
    return info.f_bavail * info.f_frsize


def check_space(folder: Path, needed: int, *, outdir: Path, reclaim: Callable[[], None] | None = None) -> None:
    """Raise :class:`OutputError` unless ``needed`` bytes (and a margin) fit on ``folder``'s file system.

    ``reclaim`` frees space the build can do without (the resume cache); it is called
    only when the outputs would not fit otherwise.
    """
    needed += SPACE_MARGIN + needed // 50
    try:
        free = free_bytes(folder)
        if free < needed and reclaim is not None:
            reclaim()
            free = free_bytes(folder)
    except OSError:  # no statvfs here: the writes will tell
        return
    if free < needed:
        raise OutputError(
            f"not enough free space for the outputs: they need up to {needed / 1e6:,.1f} MB, "
            f"{free / 1e6:,.1f} MB are free; free some space or write the outputs elsewhere (-o)",
            path=outdir,
        ) from OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def previous_outputs(outdir: Path) -> set[str]:
    """The names of a previous build's outputs in ``outdir``, which a new build removes.

    gseio's own fixed names (the template files, the TPM files, the reports, the publish
    marker), and the h5ad the previous report (or the marker of an interrupted publish)
    lists, only when it is a plain ``.h5ad`` file directly inside ``outdir`` that gseio
    wrote (an HDF5 file holding ``uns/gseio``): a report is only a file, anyone may have
    edited it. (:func:`~gseio.export._publish.publish` removes plain files only, whatever
    it is given.)
    """
    import json

    from .export._publish import PUBLISHING_MARKER, interrupted_publish
    from .export.template import RAW_FILES, TPM_FILES
    from .report import FAILED_REPORT_NAME, REPORT_NAME

    names = {*RAW_FILES, *TPM_FILES, REPORT_NAME, FAILED_REPORT_NAME, PUBLISHING_MARKER}
    try:
        report = json.loads((outdir / REPORT_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        report = None
    listed = report.get("outputs") if isinstance(report, dict) else None
    listed = listed if isinstance(listed, list) else []
    candidates = [entry.get("file") for entry in listed if isinstance(entry, dict)]
    marker = interrupted_publish(outdir) or {}
    for key in ("outputs", "replaces"):  # a publish cut short: the old report is gone, the marker names both sets
        candidates += marker[key] if isinstance(marker.get(key), list) else []
    for name in candidates:
        plain = isinstance(name, str) and name.endswith(".h5ad") and name_problem(name) is None
        if plain and written_by_gseio(outdir / name):
            names.add(name)
    return names


def written_by_gseio(path: Path) -> bool:
    """Whether ``path`` is a plain file (no symbolic link) holding an h5ad that gseio wrote (``uns/gseio``)."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return False
        with open(path, "rb") as fh:
            if fh.read(8) != b"\x89HDF\r\n\x1a\n":
                return False
        import h5py

        with h5py.File(path, "r") as f:  # links only: no data is read, no link followed
            if not isinstance(f.get("uns", getlink=True), h5py.HardLink):
                return False
            return isinstance(f["uns"].get("gseio", getlink=True), h5py.HardLink)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return False


def check_targets(outdir: Path, names: list[str], *, overwrite: bool) -> None:
    """Refuse, before any input is read, to replace outputs without ``--overwrite``, or a folder ever."""
    from .export._publish import PUBLISHING_MARKER

    if not outdir.is_dir():
        return
    existing = [name for name in names if os.path.lexists(outdir / name)]
    folders = [name for name in existing if (outdir / name).is_dir() and not (outdir / name).is_symlink()]
    if folders:
        raise OutputError(
            f"{', '.join(folders)}: a folder named like an output; gseio never replaces a folder, move it away",
            path=outdir,
        )
    if os.path.lexists(outdir / PUBLISHING_MARKER) and not overwrite:
        raise OutputError(
            f"a gseio build was interrupted while it replaced the outputs one by one ({PUBLISHING_MARKER} is "
            "there): they may mix two builds; pass --overwrite to build them again",
            path=outdir,
        )
    if existing and not overwrite:
        raise OutputError(f"outputs exist already ({', '.join(existing)}); pass --overwrite to replace them",
                          path=outdir)  # fmt: skip


def check_cache_folder(folder: Path) -> None:
    """Refuse a resume cache that is not a real folder (or absent): never a file, nor a link to elsewhere."""
    if folder.is_symlink():
        raise OutputError("is a symbolic link; gseio keeps its resume cache in a folder of its own: remove the "
                          "link, or build without the cache (--no-resume)", path=folder)  # fmt: skip
    if folder.exists() and not folder.is_dir():
        raise OutputError("is a file, not gseio's resume cache folder: remove it, or build without the cache "
                          "(--no-resume)", path=folder)  # fmt: skip
