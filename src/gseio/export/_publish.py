"""Put a build's outputs in place all at once: the folder holds the old set or the new set, never a mix.

Outputs are written into a staging folder beside the output folder (same file system).
When they are complete and checked, :func:`publish` swaps the two folders in one atomic
step (``renameat2(RENAME_EXCHANGE)``, Linux >= 3.15): files in the output folder that the
build does not produce (a curator's notes, ``downloaded_data/``) are first hard-linked
into the staging folder, so they are kept. A kill at any moment leaves either the old
folder or the new one under the output folder's name.

Where the swap is not available (another OS, a file system without it, the output folder
being the current directory or a mount point), each output is moved into place on its
own (each file whole, atomically), ``build_report.json`` last.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

logger = logging.getLogger("gseio.export")

#: Staging folders are named ``.<output folder>.gseio-staging-<pid>-<random>``.
STAGING_MARK = ".gseio-staging-"

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _renameat2() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        func = libc.renameat2
    except (OSError, AttributeError, TypeError):  # no glibc >= 2.28
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    func.restype = ctypes.c_int
    return func


def exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths; ``False`` when the system cannot (the caller falls back)."""
    func = _renameat2()
    if func is None:
        return False
    if func(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    errno = ctypes.get_errno()
    logger.debug("renameat2(RENAME_EXCHANGE) failed: %s", os.strerror(errno))
    return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale(outdir: Path) -> None:
    """Remove staging folders of ``outdir`` left by builds that were killed (their process is gone)."""
    candidates = [*outdir.parent.glob(f".{outdir.name}{STAGING_MARK}*")]
    if outdir.is_dir():
        candidates += outdir.glob(f"{STAGING_MARK}*")  # inside, where a sibling was not possible
    for stale in candidates:
        pid = stale.name.rsplit(STAGING_MARK, 1)[-1].split("-")[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)


@contextlib.contextmanager
def staging_folder(outdir: Path) -> Iterator[Path]:
    """A new folder for the outputs being written, beside ``outdir`` (inside it if the parent is read-only).

    Always removed afterwards (after :func:`publish` it holds the previous outputs).
    """
    outdir = Path(os.path.realpath(outdir))  # a symlinked output folder: work where it points
    outdir.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(outdir)
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
    staging = outdir.parent / f".{outdir.name}{STAGING_MARK}{tag}"
    try:
        staging.mkdir()
    except PermissionError:
        outdir.mkdir(parents=True, exist_ok=True)
        staging = outdir / f"{STAGING_MARK}{tag}"
        staging.mkdir()
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _link_tree(src: Path, dst: Path) -> None:
    """Recreate ``src`` at ``dst`` with hard links (copies where links are refused); symlinks as symlinks."""

    def link(a: str, b: str) -> None:
        try:
            os.link(a, b, follow_symlinks=False)
        except OSError:
            shutil.copy2(a, b, follow_symlinks=False)

    if src.is_symlink():
        os.symlink(os.readlink(src), dst)
    elif src.is_dir():
        shutil.copytree(src, dst, symlinks=True, copy_function=link)
    else:
        link(str(src), str(dst))


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _can_swap(outdir: Path) -> bool:
    if os.path.ismount(outdir):
        return False
    cwd = Path.cwd().resolve()
    return not (cwd == outdir.resolve() or outdir.resolve() in cwd.parents)


def publish(staging: Path, outdir: Path, *, produced: Iterable[str], drop: Iterable[str] = (),
            last: str | None = None) -> None:  # fmt: skip
    """Make the staged outputs the content of ``outdir``.

    Parameters
    ----------
    staging
        The folder holding the complete new outputs (from :func:`staging_folder`).
    outdir
        The output folder; created if missing.
    produced
        The names of the new outputs (files in ``staging``).
    drop
        Names in ``outdir`` that belong to the previous build and must not survive it
        (its outputs, its resume cache), beyond those in ``produced``.
    last
        In the file-by-file fallback, the output moved last (the build report).
    """
    outdir = Path(os.path.realpath(outdir))  # a symlinked output folder: work where it points
    produced = list(produced)
    if staging.parent == outdir.parent and not outdir.exists():
        os.rename(staging, outdir)  # the folder appears whole
        staging.mkdir()  # (the staging context removes it again)
        _fsync_dir(outdir.parent)
        return
    if staging.parent == outdir.parent and _can_swap(outdir):
        skip = {*produced, *drop}
        for entry in sorted(outdir.iterdir()):
            if entry.name not in skip and STAGING_MARK not in entry.name:
                _link_tree(entry, staging / entry.name)
        if exchange(staging, outdir):
            _fsync_dir(outdir.parent)
            return
        for name in os.listdir(staging):  # the swap is not possible here: undo the links
            if name not in produced:
                path = staging / name
                shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    outdir.mkdir(parents=True, exist_ok=True)
    ordered = sorted(produced, key=lambda name: name == last)
    for name in ordered:
        os.replace(staging / name, outdir / name)
    for name in drop:
        path = outdir / name
        if name not in produced and path.exists():
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    _fsync_dir(outdir)
