"""Where input bytes come from: a file on disk, or a member of an uncompressed tar.

GEO's ``GSE..._RAW.tar`` is an uncompressed tar of individually compressed files, so a
member is just a byte range of the tar: it is read in place, with its own file handle
(safe from several threads at once), and never extracted to disk.

What is read is what was listed: a source listed by the discovery records the identity
(device and inode) of its file, or of the tar that holds it, and every later opening
checks it before a byte is read. A listed path that was not a symbolic link is opened
with ``O_NOFOLLOW``, so a file swapped for a link after listing is never followed
(:class:`~gseio.errors.InputChangedError`).
"""

from __future__ import annotations

import errno
import io
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from .errors import InputChangedError


def printable(text: str) -> str:
    r"""``text`` with the bytes of a file name that are not UTF-8 spelled ``\xNN`` (others unchanged).

    File names are bytes: Python decodes those that are not UTF-8 with ``surrogateescape``,
    and such a string can be neither printed nor stored (JSON, HDF5). This is the one
    spelling gseio shows and stores; the file itself is still opened by its real bytes.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            raw = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # a surrogate that stands for no byte
            return text.encode("utf-8", "backslashreplace").decode("ascii")
        return raw.decode("utf-8", "backslashreplace")
    return text


#: (st_dev, st_ino) of a file.
Identity = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Source:
    """One input file: on disk, or a byte range (member) of an uncompressed tar.

    Attributes
    ----------
    path
        The file on disk; for a tar member, the tar file.
    rel
        The name shown to users and recorded in ``obs["source_file"]``: the path relative
        to the input folder, or the member's name inside the tar.
    offset, size
        For a tar member, where its bytes lie in the tar; ``None`` for a plain file.
    identity
        ``(st_dev, st_ino)`` of the file (the tar for a member) when it was listed; every
        opening checks it. ``None`` (a source not made by the discovery): not checked.
    follow
        Whether :attr:`path` was itself a symbolic link when listed (an in-tree alias, or
        the tar named by the user): only then is a link followed.
    """

    path: Path
    rel: str
    offset: int | None = None
    size: int | None = None
    identity: Identity | None = field(default=None, compare=False, repr=False)
    follow: bool = field(default=True, compare=False, repr=False)

    @classmethod
    def file(cls, path: str | os.PathLike[str], *, root: Path | None = None) -> Source:
        """A plain file, named relative to ``root`` (default: its parent)."""
        path = Path(path)
        base = root if root is not None else path.parent
        rel = path.relative_to(base).as_posix() if path.is_relative_to(base) else path.name
        return cls(path=path, rel=printable(rel))

    @classmethod
    def listed(cls, path: Path, *, rel: str, identity: Identity, link: bool) -> Source:
        """A file found by the discovery, with the identity its openings must find (see :attr:`identity`)."""
        return cls(path=path, rel=printable(rel), identity=identity, follow=link)

    @property
    def name(self) -> str:
        """The file's base name."""
        return PurePosixPath(self.rel).name

    @property
    def parent(self) -> str:
        """The folder part of :attr:`rel` (``""`` at the top)."""
        parent = PurePosixPath(self.rel).parent.as_posix()
        return "" if parent == "." else parent

    @property
    def in_tar(self) -> bool:
        """Whether this is a member of a tar."""
        return self.offset is not None

    def open(self) -> BinaryIO:
        """Open the raw (still compressed) bytes for reading.

        Raises
        ------
        ~gseio.errors.InputChangedError
            The file (or the tar) is no longer the one listed: nothing of it is read.
        OSError
            The file cannot be opened.
        """
        if self.offset is None:
            return open_listed(self.path, self.identity, follow=self.follow, shown=self)
        handle = open_listed(self.path, self.identity, follow=self.follow, shown=self)
        return io.BufferedReader(_Slice(handle, self.offset, self.size or 0, self.rel), buffer_size=1 << 20)

    def stat_size(self) -> int:
        """Size of the raw bytes."""
        return self.size if self.size is not None else self.path.stat().st_size

    def __str__(self) -> str:
        return printable(f"{self.path}:{self.rel}" if self.in_tar else str(self.path))


def open_listed(path: Path, identity: Identity | None, *, follow: bool = True, shown: object = None) -> BinaryIO:
    """Open ``path`` for reading, checking that it is still the regular file ``identity`` names.

    Without ``follow``, a symbolic link is not followed (``O_NOFOLLOW``); the file is opened
    non-blocking, so that a FIFO put in its place cannot hang the build, and checked with
    ``fstat`` before anything is read. ``identity=None`` opens the path as it is.
    """
    if identity is None:
        return open(path, "rb")

    nonblock = getattr(os, "O_NONBLOCK", 0)  # POSIX; elsewhere there are no FIFOs to fear

    def opener(name: str, flags: int) -> int:
        extra = nonblock | (0 if follow else getattr(os, "O_NOFOLLOW", 0))
        try:
            fd = os.open(name, flags | extra)
        except OSError as e:
            if e.errno == errno.ELOOP and not follow:
                raise _changed(shown or path, "it was replaced by a symbolic link") from e
            raise
        try:
            found = os.fstat(fd)
            if not stat.S_ISREG(found.st_mode):
                raise _changed(shown or path, "it was replaced by something that is not a regular file")
            if (found.st_dev, found.st_ino) != identity:
                raise _changed(shown or path, "it was replaced by another file (or a link was made to point "
                               "elsewhere)")  # fmt: skip
            if nonblock:
                os.set_blocking(fd, True)
        except BaseException:
            os.close(fd)
            raise
        return fd

    return open(path, "rb", opener=opener)


def _changed(where: object, what: str) -> InputChangedError:
    from .errors import InputChangedError

    return InputChangedError(
        f"changed while the build ran: {what} after the input was listed; nothing of it was read. Run the "
        "build again once the input folder is stable",
        path=where,
    )


class _Slice(io.RawIOBase):
    """A read-only, seekable window onto ``size`` bytes of an open file, starting at ``offset``."""

    def __init__(self, fh: BinaryIO, offset: int, size: int, name: str = "") -> None:
        super().__init__()
        self._fh = fh
        self._start, self._size, self._pos, self._name = offset, size, 0, name

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = max(0, min(len(buffer), self._size - self._pos))
        if n == 0:
            return 0
        self._fh.seek(self._start + self._pos)
        got = self._fh.readinto(memoryview(buffer)[:n]) or 0
        if got == 0:  # the archive ends inside the member: never hand out a member cut short as if whole
            from .errors import CorruptFileError

            raise CorruptFileError(
                f"is cut short: the archive ends after {self._pos:,} of its {self._size:,} bytes (the download "
                "of the archive was probably cut short); download it again",
                path=f"{self._fh.name}:{self._name}" if self._name else self._fh.name,
            )
        self._pos += got
        return got

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        self._fh.close()
        super().close()
