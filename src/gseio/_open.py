"""One place for compression: detect it from magic bytes and decompress.

Every text reader gets its bytes from here, so ``.gz``, ``.bz2``, ``.xz``, ``.zip``
and plain files behave the same everywhere. Compression is detected from the
file's first bytes, not from its name (GEO has plenty of ``.gz`` files that are not
gzip, and plain files named ``.gz``); the suffix is only used to name the cell.
"""

from __future__ import annotations

import bz2
import io
import lzma
import os
import zipfile
import zlib
from typing import IO, Any, Literal

from ._source import Source
from .errors import CorruptFileError, EmptyFileError, FormatError

try:  # ISA-L is 2-3x faster than zlib for gzip; fall back to the standard library
    from isal import igzip as _gzip
    from isal.isal_zlib import error as _isal_error

    _GZIP_ERRORS: tuple[type[BaseException], ...] = (OSError, EOFError, zlib.error, _isal_error)
except ImportError:  # pragma: no cover - isal is a declared dependency
    import gzip as _gzip

    _GZIP_ERRORS = (OSError, EOFError, zlib.error)

Compression = Literal["gzip", "bz2", "xz", "zip", "none"]

_MAGIC: tuple[tuple[bytes, Compression], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"PK\x03\x04", "zip"),
)

#: Suffixes that name a compression, stripped when a name is derived from a file.
COMPRESSION_SUFFIXES = (".gz", ".gzip", ".bz2", ".xz", ".zip")


def as_source(source: Source | str | os.PathLike[str]) -> Source:
    """A :class:`~gseio._source.Source` for a path (sources pass through)."""
    return source if isinstance(source, Source) else Source.file(source)


def detect_compression(source: Source | str | os.PathLike[str]) -> Compression:
    """Return the compression of a file judged from its first bytes."""
    with as_source(source).open() as fh:
        magic = fh.read(6)
    for prefix, kind in _MAGIC:
        if magic.startswith(prefix):
            return kind
    return "none"


def _zip_member(zf: zipfile.ZipFile, source: Source) -> str:
    names = [i.filename for i in zf.infolist() if not i.is_dir()]
    if len(names) != 1:
        raise FormatError(
            f"zip archive holds {len(names)} files ({', '.join(names[:5]) or 'none'}); "
            "a zipped count table must hold exactly one file: extract it first",
            path=source,
        )
    return names[0]


def open_decompressed(source: Source | str | os.PathLike[str]) -> IO[bytes]:
    """Open a file for streaming its decompressed bytes (the caller closes it)."""
    source = as_source(source)
    kind = detect_compression(source)
    raw = source.open()
    try:
        if kind == "gzip":
            return _Owning(_gzip.open(raw, "rb"), raw)
        if kind == "bz2":
            return _Owning(bz2.open(raw, "rb"), raw)
        if kind == "xz":
            return _Owning(lzma.open(raw, "rb"), raw)
        if kind == "zip":
            zf = zipfile.ZipFile(raw)
            return _Owning(zf.open(_zip_member(zf, source)), raw)
    except BaseException:
        raw.close()
        raise
    return raw


class _Owning(io.RawIOBase):
    """A decompressing stream that also closes the raw file it reads from."""

    def __init__(self, stream: IO[bytes], raw: IO[bytes]) -> None:
        super().__init__()
        self._stream, self._raw = stream, raw

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read(self, size: int = -1) -> bytes:
        return self._stream.read(size)

    def readall(self) -> bytes:
        return self._stream.read()

    def close(self) -> None:
        if not self.closed:
            try:
                self._stream.close()
            finally:
                self._raw.close()
        super().close()


def open_seekable(source: Source | str | os.PathLike[str]) -> IO[bytes]:
    """Open a file's decompressed bytes seekably (compressed files are decompressed into memory)."""
    source = as_source(source)
    if detect_compression(source) == "none":
        return source.open()
    return io.BytesIO(read_bytes(source))


def open_hdf5(source: Source | str | os.PathLike[str]) -> Any:
    """Open an HDF5 file (on disk, in a tar, or compressed) read-only with h5py.

    Closing the returned ``h5py.File`` (or leaving its ``with`` block) also closes the
    underlying file handle.
    """
    import h5py

    class _OwningFile(h5py.File):
        def close(self) -> None:
            try:
                super().close()
            finally:
                handle.close()

    handle = open_seekable(source)
    try:
        return _OwningFile(handle, "r")
    except BaseException:
        handle.close()
        raise


def read_bytes(source: Source | str | os.PathLike[str], *, limit: int | None = None) -> bytes:
    """Read a whole file, or its first ``limit`` bytes, decompressed.

    Parameters
    ----------
    source
        The file (a path or a :class:`~gseio._source.Source`, e.g. a tar member); gzip,
        bzip2, xz, single-member zip or uncompressed.
    limit
        Read at most this many decompressed bytes (for sniffing). ``None`` reads all.

    Returns
    -------
    The decompressed bytes.

    Raises
    ------
    EmptyFileError
        The file is empty, or decompresses to nothing (only when ``limit`` is ``None``).
    CorruptFileError
        The file cannot be read or its compression is truncated or corrupt.
    """
    source = as_source(source)
    kind: Compression = "none"
    try:
        kind = detect_compression(source)
        if limit is None and kind == "gzip":
            with source.open() as fh:  # one-shot decompression is faster than streaming
                data = _gzip.decompress(fh.read())
        else:
            with open_decompressed(source) as fh:
                data = fh.read() if limit is None else fh.read(limit)
    except FormatError:
        raise
    except (*_GZIP_ERRORS, lzma.LZMAError, zipfile.BadZipFile, ValueError) as e:
        raise CorruptFileError(f"{_describe(e)}: {e}", path=source) from e
    if limit is None and not data:
        suffix = "" if kind == "none" else f" after {kind} decompression"
        raise EmptyFileError("the file is empty" + suffix, path=source)
    return data


def _describe(e: BaseException) -> str:
    if isinstance(e, FileNotFoundError):
        return "does not exist"
    if isinstance(e, PermissionError | IsADirectoryError):
        return "cannot be read"
    if isinstance(e, EOFError):
        return "is truncated (the download was probably cut short)"
    return "is corrupt"


def strip_compression_suffix(name: str) -> str:
    """Drop a compression suffix (``.gz``, ``.bz2``, ``.xz``, ``.zip``) from a file name."""
    lower = name.lower()
    for suffix in COMPRESSION_SUFFIXES:
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return name
