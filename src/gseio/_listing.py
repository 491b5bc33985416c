"""List the files of an input folder, or the members of an uncompressed tar, and set aside what is never read.

What is listed is what is read: every file is recorded with its identity (device and
inode; see :class:`~gseio._source.Source`), so that a file replaced or swapped for a
link after listing is refused instead of followed. Nothing outside the input is ever
listed: symbolic links leading out, and links to folders, are reported and not followed.

Set aside, each with its reason (never silently): hidden files and folders, gseio's own
working files and folders (cache, staging, lock: names holding ``.gseio-``), folders that hold a gseio build (their
``build_report.json``, written by gseio), folders the caller excludes (``gseio build``
excludes its output folder), symbolic-link loops and broken links, folders that cannot
be read, and in-tree symbolic links to a file listed under its own name (an alias: the
real file is read, the alias is reported).
"""

from __future__ import annotations

import errno
import fnmatch
import json
import os
import re
import stat
import tarfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from . import _open
from ._source import Source, open_listed, printable
from .errors import FormatError, InputError

__all__ = ["BUILD_REPORT_NAMES", "WORKING_MARK", "is_gseio_build", "list_sources"]

#: The reports a gseio build leaves in its output folder (the second after a failed conservation check).
BUILD_REPORT_NAMES = ("build_report.json", "build_report.failed.json")
#: A larger ``build_report.json`` is not opened to be recognised (gseio's reports are far smaller).
_REPORT_MAX_BYTES = 256 << 20

_EXCLUDED = "excluded from the input (the output folder of this build, or exclude=): never read as input"
_BUILD = ("holds a gseio build (its build_report.json was written by gseio): outputs are never read back as "
          "input")  # fmt: skip
_UNSAFE = re.compile(r"^(?:[/\\]|[A-Za-z]:)|(?:^|[/\\])\.\.(?:[/\\]|$)")

Ignored = list[tuple[str, str]]


def _matches(rel: str, pattern: str) -> bool:
    return fnmatch.fnmatch(rel, pattern) or fnmatch.fnmatch(PurePosixPath(rel).name, pattern)


def is_gseio_build(folder: Path) -> bool:
    """Whether ``folder`` holds a report written by a gseio build (recognised by its keys, not its name)."""
    for name in BUILD_REPORT_NAMES:
        path = folder / name
        try:
            info = os.lstat(path)
            if not stat.S_ISREG(info.st_mode) or info.st_size > _REPORT_MAX_BYTES:
                continue
            with open_listed(path, (info.st_dev, info.st_ino), follow=False) as fh:
                report = json.loads(fh.read())
        except (OSError, ValueError, InputError):
            continue
        if isinstance(report, dict) and "report_version" in report and {"conservation", "files"} & report.keys():
            return True
    return False


#: gseio's working files and folders (``.gseio-cache``, staging folders, locks) hold this in their names.
WORKING_MARK = ".gseio-"
_WORKING = "gseio's working {} (the unit cache, or the staging or lock of a build): never read as input"


class _Walk:
    """One listing of a folder: the sources found and the entries set aside, with reasons."""

    def __init__(self, root: Path, exclude: Iterable[str | os.PathLike[str]]) -> None:
        self.root = root
        self.real_root = Path(os.path.realpath(root))
        self.excluded = {Path(os.path.realpath(p)) for p in exclude}
        self.sources: list[Source] = []
        self.ignored: Ignored = []
        self._builds: dict[Path, bool] = {}

    def rel(self, path: Path) -> str:
        return Source.file(path, root=self.root).rel

    def _rel(self, rel_dir: str, name: str) -> str:
        return name if rel_dir == "." else f"{rel_dir}/{name}"

    def _is_build(self, folder: Path) -> bool:
        if folder not in self._builds:
            self._builds[folder] = is_gseio_build(folder)
        return self._builds[folder]

    def folder_reason(self, path: Path, name: str, real_dir: Path) -> str | None:
        """Why the sub-folder ``path`` (``name`` in the folder whose real path is ``real_dir``) is not entered."""
        if self.excluded and (real_dir / name in self.excluded or Path(os.path.realpath(path)) in self.excluded):
            return _EXCLUDED
        if path.is_symlink():  # os.walk would skip it silently: say so
            return "symbolic link to a folder: not followed"
        if WORKING_MARK in name:
            return _WORKING.format("folder")
        if name.startswith("."):
            return "hidden folder: not read"
        if self._is_build(path):
            return _BUILD
        return None

    def _target_reason(self, real: Path) -> str | None:
        """Why the in-tree target of a symbolic link is not read (it lies in a folder set aside), or ``None``."""
        for folder in real.parents:
            if folder == self.real_root:
                return None
            if folder in self.excluded:
                return "symbolic link into a folder excluded from the input (the output folder): not followed"
            if self._is_build(folder):
                return "symbolic link into a folder that holds a gseio build: not followed"
        return None

    def add_file(self, path: Path, rel: str, real_dir: Path) -> None:
        try:
            info = os.lstat(path)
        except OSError as e:
            self.ignored.append((rel, f"cannot be inspected ({e.strerror}): not read"))
            return
        if real_dir / path.name in self.excluded:
            self.ignored.append((rel, _EXCLUDED))
        elif WORKING_MARK in path.name:
            self.ignored.append((rel, _WORKING.format("file")))
        elif stat.S_ISLNK(info.st_mode):
            self._add_link(path, rel)
        elif not stat.S_ISREG(info.st_mode):
            self.ignored.append((rel, "not a regular file"))
        else:
            identity = (info.st_dev, info.st_ino)
            self.sources.append(Source.listed(path, rel=rel, identity=identity, link=False))

    def _add_link(self, path: Path, rel: str) -> None:
        try:
            real = Path(os.path.realpath(path, strict=True))
        except OSError as e:  # a loop (ELOOP), or a link to nothing
            loop = e.errno == errno.ELOOP
            what = "a symbolic link loop" if loop else "a broken symbolic link (its target does not exist)"
            self.ignored.append((rel, f"{what}: not followed"))
            return
        if not real.is_relative_to(self.real_root):
            self.ignored.append((rel, "symbolic link leading out of the input folder"))
            return
        if (reason := self._target_reason(real)) is not None:
            self.ignored.append((rel, reason))
            return
        try:
            target = os.lstat(real)  # the resolved path: the identity of the in-tree file itself
        except OSError as e:
            self.ignored.append((rel, f"cannot be inspected ({e.strerror}): not read"))
            return
        if not stat.S_ISREG(target.st_mode):
            self.ignored.append((rel, "not a regular file"))
            return
        identity = (target.st_dev, target.st_ino)
        self.sources.append(Source.listed(path, rel=rel, identity=identity, link=True))

    def run(self) -> tuple[list[Source], Ignored]:
        def unreadable(e: OSError) -> None:
            where = Path(e.filename) if e.filename else self.root
            self.ignored.append((self.rel(where) if where != self.root else ".",
                                 f"folder cannot be read ({e.strerror}): its files are not read"))  # fmt: skip

        for dirpath, dirnames, filenames in os.walk(self.root, onerror=unreadable):
            real_dir = Path(os.path.realpath(dirpath))  # once per folder: realpath inspects every component
            rel_dir = Path(dirpath).relative_to(self.root).as_posix()
            kept = []
            for name in sorted(dirnames):
                path = Path(dirpath, name)
                if (reason := self.folder_reason(path, name, real_dir)) is not None:
                    self.ignored.append((printable(self._rel(rel_dir, name)), reason))
                else:
                    kept.append(name)
            dirnames[:] = kept
            for name in filenames:
                self.add_file(Path(dirpath, name), printable(self._rel(rel_dir, name)), real_dir)
        return self.sources, self.ignored


def _aliases(sources: list[Source]) -> tuple[list[Source], Ignored]:
    """Set aside in-tree symbolic links to a file listed under another name: the real file is read once.

    Among the names of one file (by identity), the one that is not a link is read (several
    hard links are all kept: the duplicate check names them); when all are links, the
    first in path order.
    """
    names: dict[tuple[int, int], list[Source]] = {}
    for source in sources:
        if source.identity is not None and not source.in_tar:
            names.setdefault(source.identity, []).append(source)
    kept, ignored = [], []
    for source in sources:
        group = names.get(source.identity) if source.identity is not None and not source.in_tar else None
        if group is None or len(group) == 1 or not source.follow:
            kept.append(source)
            continue
        real = next((s for s in group if not s.follow), group[0])
        if real is source:
            kept.append(source)
        else:
            ignored.append((source.rel, f"symbolic link to {real.rel}: an alias of a file read under that name, "
                            "not read twice"))  # fmt: skip
    return kept, ignored


def _folder_sources(root: Path, exclude: Iterable[str | os.PathLike[str]]) -> tuple[list[Source], Ignored]:
    walk = _Walk(root, exclude)
    for folder in walk.excluded:
        if folder == walk.real_root:
            raise InputError(
                "is the output folder too: the outputs would be read back as input by the next build; write the "
                "outputs to another folder (e.g. beside this one)",
                path=root,
            )
    if is_gseio_build(root):
        raise InputError(
            f"{_BUILD}: build from the folder of the original files (its report's 'input') instead, or read the "
            ".h5ad alone with gseio.read()",
            path=root,
        )
    return walk.run()


def _member_problem(member: tarfile.TarInfo) -> str | None:
    """Why a tar member is never read (unsafe path, link, device, ...), or ``None`` for a regular file."""
    if _UNSAFE.search(member.name):
        return "unsafe member path (absolute or with '..'): never read or written"
    if member.issym() or member.islnk():
        kind = "symbolic" if member.issym() else "hard"
        return f"not a regular file ({kind} link to {printable(member.linkname)!r}): never followed"
    if member.ischr() or member.isblk():
        return "not a regular file (device file): never read"
    if member.isfifo():
        return "not a regular file (FIFO): never read"
    if member.issparse():
        return "sparse member: cannot be read in place; extract the archive with tar and read the folder"
    if not member.isfile() and not member.isdir():
        return "not a regular file: never read"
    return None


def _tar_sources(tar_path: Path) -> tuple[list[Source], Ignored]:
    if _open.detect_compression(tar_path) != "none":
        raise InputError(
            "a compressed tar cannot be read in place; decompress it to a plain .tar (GEO's RAW.tar is "
            "uncompressed) or extract it and read the folder",
            path=tar_path,
        )
    found: dict[str, Source] = {}
    ignored: Ignored = []
    members: list[tarfile.TarInfo] = []
    cut_short = False
    link = tar_path.is_symlink()  # the tar the user named may be a link; its members are read where it points
    with open(tar_path, "rb") as fh:  # one handle: the tar listed is the tar whose identity is recorded
        info = os.fstat(fh.fileno())
        identity, size = (info.st_dev, info.st_ino), info.st_size
        try:
            with tarfile.open(fileobj=fh, mode="r:") as tar:
                try:
                    members.extend(tar)
                except tarfile.ReadError:  # "unexpected end of data": the members listed so far are kept
                    if not members:
                        raise
                    cut_short = True
                end = tar.offset
        except tarfile.TarError as e:
            raise FormatError(f"not a readable tar archive: {e}", path=tar_path) from e
        damaged = _damaged_tail(fh, end, size)
    for member in members:
        name = printable(member.name)
        if (problem := _member_problem(member)) is not None:
            ignored.append((name, problem))
        elif member.isfile():  # directories are not reported
            if member.name in found:  # as extraction would, the later copy wins
                ignored.append((name, "listed again later in the archive: the later copy is read"))
            found[member.name] = Source(tar_path, name, offset=member.offset_data, size=member.size,
                                        identity=identity, follow=link)  # fmt: skip
            cut_short |= member.offset_data + member.size > size
    if cut_short or damaged:
        last = printable(members[-1].name) if members else "its start"
        ignored.append((tar_path.name, f"the archive is cut short or damaged after {last}: later members, if "
                        "any, are missing, and a member cut short fails to read; download it again"))  # fmt: skip
    return list(found.values()), ignored


def _damaged_tail(fh: object, end: int, size: int) -> bool:
    """Whether the end-of-archive zeros after the last member are missing or not zeros.

    ``tarfile`` silently stops at a header cut short or damaged: this tells it apart.
    """
    fh.seek(end)  # type: ignore[attr-defined]
    tail = fh.read(max(0, min(size - end, 1 << 20)))  # type: ignore[attr-defined]
    return len(tail) < 512 or bool(tail.strip(b"\x00"))


def list_sources(
    path: Path, *, pattern: str | None = None, exclude: Iterable[str | os.PathLike[str]] = ()
) -> tuple[list[Source], Ignored]:
    """List the candidate inputs of a folder (recursively) or an uncompressed tar.

    Parameters
    ----------
    path
        The folder, or the tar.
    pattern
        A glob matched against each file's relative path (or its name); others are set aside.
    exclude
        Files or folders inside ``path`` that are never read (``gseio build`` passes its output
        folder); each is reported as set aside. ``path`` itself being excluded is an error.

    Returns
    -------
    The sources, sorted by relative path, and ``(relative path, reason)`` for every file or
    folder set aside (see the module notes). Files that are never data by their name are set
    aside later, by :func:`gseio._discover.plan_units`, once multi-file units (which may
    include e.g. a ``run_info.json``) have claimed theirs.

    Raises
    ------
    ~gseio.errors.InputError
        ``path`` is neither a folder nor a tar, is the excluded (output) folder itself, or
        holds a gseio build.
    """
    if path.is_dir():
        found, ignored = _folder_sources(path, exclude)
    elif path.is_file() and tarfile.is_tarfile(path):
        found, ignored = _tar_sources(path)
    else:
        raise InputError("neither a folder nor a tar archive; read a single file with gseio.read()", path=path)
    sources = []
    for source in sorted(found, key=lambda s: s.rel):
        if pattern is not None and not _matches(source.rel, pattern):
            ignored.append((source.rel, f"does not match pattern {pattern!r}"))
            continue
        sources.append(source)
    sources, aliases = _aliases(sources)
    ignored.extend(aliases)
    ignored.sort()
    return sources, ignored
