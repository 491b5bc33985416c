"""Put a build's outputs in place all at once: the folder holds the old set or the new set, never a mix.

Outputs are written into a staging folder beside the output folder (same file system).
When they are complete and checked, :func:`publish` swaps the two folders in one atomic
step (``renameat2(RENAME_EXCHANGE)``, Linux >= 3.15): files in the output folder that the
build does not produce (a curator's notes, ``downloaded_data/``) are first hard-linked
into the staging folder, so they are kept, and the staging folder takes the output
folder's mode (setgid and sticky bits too), owner, group and ACLs. A kill at any moment
leaves either the old folder or the new one under the output folder's name.

Where the swap is not available (another OS, a file system without it, the output folder
being the current directory or a mount point), each output is moved into place on its
own (each file whole, atomically). That sequence can be cut short, so it is framed by a
marker: ``.gseio-publishing`` (listing the new set) is written first and the old report
removed, then the outputs are moved, the report last, and the marker is removed at the
very end. A folder holding the marker may mix two builds, and says so
(:func:`interrupted_publish`).

Only names the caller vouches for are ever removed (``drop``), and of those only plain
files directly inside the output folder: never a folder, a symbolic link (nor what it
points to), ``.``, ``..`` or a name with a path separator.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import logging
import os
import shutil
import stat
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import OutputError
from ._atomic import output_error

logger = logging.getLogger("gseio.export")

#: Staging folders are named ``.<output folder>.gseio-staging-<pid>-<random>``.
STAGING_MARK = ".gseio-staging-"
#: Present while (and after an interrupted) file-by-file publish: the folder may mix two builds.
PUBLISHING_MARKER = ".gseio-publishing"
#: Extended attributes that hold a folder's POSIX ACLs (Linux).
_ACLS = ("system.posix_acl_access", "system.posix_acl_default")

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


def plain_name(name: str) -> bool:
    """Whether ``name`` names an entry directly inside a folder (no separator, not ``.``/``..``)."""
    return bool(name) and name not in (".", "..") and not any(c in name for c in "/\\\0")


def _removable(folder: Path, name: str) -> bool:
    """Whether ``folder/name`` is a plain file (not a folder, not a symbolic link) that may be removed."""
    if not plain_name(name):
        return False
    try:
        return stat.S_ISREG(os.lstat(folder / name).st_mode)
    except OSError:
        return False


def interrupted_publish(folder: str | os.PathLike[str]) -> dict[str, object] | None:
    """What an interrupted file-by-file publish into ``folder`` left in its marker, or ``None``.

    A folder with the marker may hold a mix of the outputs of two builds.
    """
    marker = Path(folder) / PUBLISHING_MARKER
    if not os.path.lexists(marker):
        return None
    try:
        content = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        content = None
    return content if isinstance(content, dict) else {}


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
        if pid.isdigit() and not _pid_alive(int(pid)) and stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)


def copy_folder_metadata(src: Path, dst: Path) -> None:
    """Give ``dst`` the owner, group, ACLs and mode (setgid and sticky bits too) of ``src``, where permitted.

    On a shared server the output folder's group and setgid bit decide who can read the
    outputs; a rebuild that swaps in a new folder must not reset them.
    """
    info = os.stat(src)
    try:
        os.chown(dst, info.st_uid, info.st_gid)
    except OSError:  # only root gives files away; an owner may still change the group to one of its own
        with contextlib.suppress(OSError):
            os.chown(dst, -1, info.st_gid)
    for name in _ACLS:
        try:
            value = os.getxattr(src, name)
        except OSError:  # no ACL, or no ACL support
            with contextlib.suppress(OSError):
                os.removexattr(dst, name)  # the parent's default ACL must not stand in for none
            continue
        with contextlib.suppress(OSError):
            os.setxattr(dst, name, value)
    # last: chown clears the setgid bit, and an access ACL rewrites the group bits
    with contextlib.suppress(OSError):
        os.chmod(dst, stat.S_IMODE(info.st_mode))


def _probe(folder: Path) -> None:
    """Raise :class:`OutputError` unless a file can be created in ``folder`` (mode bits do not stop root)."""
    try:
        fd, name = tempfile.mkstemp(prefix=".gseio-probe-", dir=folder)
        os.close(fd)
        os.unlink(name)
    except OSError as e:
        raise output_error(e, folder) from e


@contextlib.contextmanager
def staging_folder(outdir: Path) -> Iterator[Path]:
    """A new folder for the outputs being written, beside ``outdir`` (inside it if the parent is read-only).

    Fails at once, with an :class:`OutputError`, when the outputs could not be put in
    place: neither the parent nor ``outdir`` can be written, or ``outdir`` exists and
    cannot be written. Always removed afterwards (after :func:`publish` it holds the
    previous outputs).
    """
    outdir = Path(os.path.realpath(outdir))  # a symlinked output folder: work where it points
    try:
        outdir.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise output_error(e, outdir.parent) from e
    if outdir.exists() and not outdir.is_dir():
        raise OutputError("is not a folder; choose another output folder (-o)", path=outdir)
    remove_stale(outdir)
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
    staging = outdir.parent / f".{outdir.name}{STAGING_MARK}{tag}"
    try:
        staging.mkdir()
    except OSError as beside:  # a read-only parent: stage inside the folder (published file by file)
        try:
            outdir.mkdir(parents=True, exist_ok=True)
            staging = outdir / f"{STAGING_MARK}{tag}"
            staging.mkdir()
        except OSError as e:
            raise output_error(e, outdir) from beside
    try:
        if staging.parent == outdir.parent and outdir.is_dir():
            _probe(outdir)  # a folder that cannot be written would be swapped, then be left undeletable
            copy_folder_metadata(outdir, staging)  # files created inside inherit its group and ACLs
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
        Names in ``outdir`` that belong to the previous build and must not survive it,
        beyond those in ``produced``. Only plain files are removed (see the module's notes).
    last
        In the file-by-file fallback, the output moved last (the build report).

    Raises
    ------
    ~gseio.errors.OutputError
        A new output would replace a folder, or the outputs cannot be moved into place.
    """
    outdir = Path(os.path.realpath(outdir))  # a symlinked output folder: work where it points
    produced = list(produced)
    if not all(plain_name(name) for name in produced):
        raise ValueError(f"output names must be plain file names: {produced}")
    for name in produced:
        if (outdir / name).is_dir() and not (outdir / name).is_symlink():
            raise OutputError("is a folder; move it away, gseio writes a file of that name", path=outdir / name)
    drop = {name for name in (*drop, PUBLISHING_MARKER) if name not in produced and plain_name(name)}
    try:
        if staging.parent == outdir.parent and not outdir.exists():
            os.rename(staging, outdir)  # the folder appears whole
            staging.mkdir()  # (the staging context removes it again)
            _fsync_dir(outdir.parent)
            return
        if staging.parent == outdir.parent and _can_swap(outdir) and _swap(staging, outdir, produced, drop):
            return
        _publish_files(staging, outdir, produced, drop, last)
    except OSError as e:
        raise output_error(e, _concerned(e, staging, outdir)) from e


def _concerned(error: OSError, staging: Path, outdir: Path) -> Path:
    """The output a system error of :func:`publish` concerns, named where it was going (never in staging)."""
    for name in (error.filename2, error.filename):  # a move's destination first
        if isinstance(name, str):
            path = Path(name)
            return outdir / path.name if path.parent == staging else path
    return outdir


def _swap(staging: Path, outdir: Path, produced: list[str], drop: set[str]) -> bool:
    """Carry the user's entries over into ``staging`` and exchange the folders; ``False`` if impossible."""
    for entry in sorted(outdir.iterdir()):
        name = entry.name
        if name in produced or STAGING_MARK in name or (name in drop and _removable(outdir, name)):
            continue
        _link_tree(entry, staging / name)
    copy_folder_metadata(outdir, staging)
    if exchange(staging, outdir):
        _fsync_dir(outdir.parent)
        return True
    for name in os.listdir(staging):  # the swap is not possible here: undo the links
        if name not in produced:
            path = staging / name
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    return False


def _publish_files(staging: Path, outdir: Path, produced: list[str], drop: set[str], last: str | None) -> None:
    """Move the outputs in one by one, framed by the marker, so that a cut-short publish is detectable."""
    from ._atomic import atomic_outputs

    outdir.mkdir(parents=True, exist_ok=True)
    marker = {"pid": os.getpid(), "outputs": produced, "replaces": sorted(drop - {PUBLISHING_MARKER})}
    with atomic_outputs([outdir / PUBLISHING_MARKER]) as (tmp,):
        tmp.write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")
    if last is not None and _removable(outdir, last):
        (outdir / last).unlink()  # the old report must not vouch for a folder being changed
    _fsync_dir(outdir)
    for name in produced:
        if name != last:
            os.replace(staging / name, outdir / name)
    for name in sorted(drop - {PUBLISHING_MARKER}):
        if _removable(outdir, name):
            (outdir / name).unlink()
    if last in produced:
        os.replace(staging / last, outdir / last)
    _fsync_dir(outdir)
    (outdir / PUBLISHING_MARKER).unlink()
    _fsync_dir(outdir)
