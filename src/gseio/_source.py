"""Where input bytes come from: a file on disk, or a member of an uncompressed tar.

GEO's ``GSE..._RAW.tar`` is an uncompressed tar of individually compressed files, so a
member is just a byte range of the tar: it is read in place, with its own file handle
(safe from several threads at once), and never extracted to disk.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO


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
    """

    path: Path
    rel: str
    offset: int | None = None
    size: int | None = None

    @classmethod
    def file(cls, path: str | os.PathLike[str], *, root: Path | None = None) -> Source:
        """A plain file, named relative to ``root`` (default: its parent)."""
        path = Path(path)
        base = root if root is not None else path.parent
        rel = path.relative_to(base).as_posix() if path.is_relative_to(base) else path.name
        return cls(path=path, rel=rel)

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
        """Open the raw (still compressed) bytes for reading."""
        if self.offset is None:
            return open(self.path, "rb")
        return io.BufferedReader(_Slice(self.path, self.offset, self.size or 0, self.rel), buffer_size=1 << 20)

    def stat_size(self) -> int:
        """Size of the raw bytes."""
        return self.size if self.size is not None else self.path.stat().st_size

    def __str__(self) -> str:
        return f"{self.path}:{self.rel}" if self.in_tar else str(self.path)


class _Slice(io.RawIOBase):
    """A read-only, seekable window onto ``size`` bytes of a file starting at ``offset``."""

    def __init__(self, path: Path, offset: int, size: int, name: str = "") -> None:
        super().__init__()
        self._fh = open(path, "rb")  # noqa: SIM115 - closed in close()
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
