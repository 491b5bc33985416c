"""One place for compression: detect it from magic bytes and decompress, within limits.

Every text reader gets its bytes from here, so ``.gz``, ``.bz2``, ``.xz``, ``.zip``
and plain files behave the same everywhere. Compression is detected from the
file's first bytes, not from its name (GEO has plenty of ``.gz`` files that are not
gzip, and plain files named ``.gz``); the suffix is only used to name the cell.

Truncated or corrupt compression and HTML pages saved under a data file's name are
:class:`~gseio.errors.CorruptFileError`; a file expanding beyond :func:`expansion_limit`
is a :class:`~gseio.errors.DecompressionBombError`, raised while it is decompressed. The
limit is a context variable, so readers see it without a parameter (their threads run in
a copy of the caller's context, see :func:`gseio._parallel.ordered_map`).
"""

from __future__ import annotations

import bz2
import io
import lzma
import os
import zipfile
import zlib
from typing import IO, Any, Literal

from . import _encoding
from ._limits import (  # the limits are set and read through this module
    _HEAD_BYTES,
    _NAMES,
    COMPRESSION_SUFFIXES,
    DEFAULT_MAX_EXPANSION,
    EXPANSION_FLOOR,
    bomb_error,
    check_ratio,
    expansion_limit,
    html_error,
    looks_like_html,
    max_expanded_size,
)
from ._source import Source
from .errors import CorruptFileError, EmptyFileError, FormatError, GseioError

try:  # ISA-L is 2-3x faster than zlib for gzip; fall back to the standard library
    from isal import igzip as _gzip
    from isal import isal_zlib as _zlib
    from isal.isal_zlib import error as _isal_error

    _GZIP_ERRORS: tuple[type[BaseException], ...] = (OSError, EOFError, zlib.error, _isal_error)
except ImportError:  # pragma: no cover - isal is a declared dependency
    import gzip as _gzip
    import zlib as _zlib

    _GZIP_ERRORS = (OSError, EOFError, zlib.error)

Compression = Literal["gzip", "bz2", "xz", "zip", "none"]

__all__ = [
    "COMPRESSION_SUFFIXES", "DEFAULT_MAX_EXPANSION", "EXPANSION_FLOOR", "as_source", "check_ratio",
    "detect_compression", "expansion_limit", "html_error", "looks_like_html", "max_expanded_size",
    "open_decompressed", "open_hdf5", "open_seekable", "read_bytes", "strip_compression_suffix",
]  # fmt: skip

_MAGIC: tuple[tuple[bytes, Compression], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"PK\x03\x04", "zip"),
)

#: Errors of decompressing (or of reading the bytes to decompress); each becomes a CorruptFileError.
_DECOMPRESSION_ERRORS = (*_GZIP_ERRORS, lzma.LZMAError, zipfile.BadZipFile)


def as_source(source: Source | str | os.PathLike[str]) -> Source:
    """A :class:`~gseio._source.Source` for a path (sources pass through)."""
    return source if isinstance(source, Source) else Source.file(source)


def _head(source: Source) -> bytes:
    with source.open() as fh:
        return fh.read(_HEAD_BYTES)


def _kind(head: bytes) -> Compression:
    return next((kind for prefix, kind in _MAGIC if head.startswith(prefix)), "none")


def detect_compression(source: Source | str | os.PathLike[str]) -> Compression:
    """Return the compression of a file judged from its first bytes."""
    return _kind(_head(as_source(source)))


def _zip_member(zf: zipfile.ZipFile, source: Source) -> str:
    names = [i.filename for i in zf.infolist() if not i.is_dir()]
    if len(names) != 1:
        raise FormatError(
            f"zip archive holds {len(names)} files ({', '.join(names[:5]) or 'none'}); "
            "a zipped count table must hold exactly one file: extract it first",
            path=source,
        )
    return names[0]


def _describe(e: BaseException, kind: Compression = "none") -> str:
    if isinstance(e, FileNotFoundError):
        return "does not exist"
    if isinstance(e, PermissionError | IsADirectoryError):
        return "cannot be read"
    name = _NAMES[kind]
    if isinstance(e, EOFError):
        return f"is truncated: its {name} data ends early (the download was probably cut short; download it again)"
    if isinstance(e, zipfile.BadZipFile):
        return "is a corrupt or truncated zip archive (download it again)"
    if isinstance(e, OSError) and e.errno is not None:
        return "cannot be read"
    return f"is corrupt: its {name} data cannot be decompressed (download it again)"


def _corrupt(e: BaseException, kind: Compression, source: Source) -> CorruptFileError:
    return CorruptFileError(f"{_describe(e, kind)}: {e}", path=source)


def _decompressor(kind: Compression, raw: IO[bytes], source: Source) -> IO[bytes]:
    if kind == "gzip":
        return _gzip.open(raw, "rb")
    if kind == "bz2":
        return bz2.open(raw, "rb")
    if kind == "xz":
        return lzma.open(raw, "rb")
    zf = zipfile.ZipFile(raw)
    member = _zip_member(zf, source)
    try:
        return zf.open(member)
    except RuntimeError as e:  # zipfile's word for "encrypted"
        raise FormatError(f"the zipped file is encrypted ({e}): decrypt or extract it first", path=source) from e
    except NotImplementedError as e:
        raise FormatError(f"unsupported zip compression ({e}): extract it first", path=source) from e


def open_decompressed(source: Source | str | os.PathLike[str]) -> IO[bytes]:
    """Open a file for streaming its decompressed bytes (the caller closes it).

    Raises
    ------
    CorruptFileError
        The file is missing or unreadable, is an HTML page, or its compression is corrupt
        or truncated (also raised later, by reads, when the damage lies further in).
    DecompressionBombError
        Raised by reads: the file expands beyond the limit (see :func:`expansion_limit`).
    FormatError
        A zip archive that does not hold exactly one file, or an encrypted one.
    """
    source = as_source(source)
    kind: Compression = "none"
    try:
        head = _head(source)
        kind = _kind(head)
        if kind == "none" and looks_like_html(head):
            raise html_error(source)
        raw = source.open()
    except OSError as e:
        raise _corrupt(e, kind, source) from e
    if kind == "none":
        return _as_text(raw, head, source, kind)
    try:
        limit = max_expanded_size(source.stat_size())
        stream = _Owning(_decompressor(kind, raw, source), raw, source=source, kind=kind, limit=limit)
        head = stream.peek(_HEAD_BYTES)
    except BaseException as e:
        raw.close()
        if isinstance(e, (*_DECOMPRESSION_ERRORS, ValueError)) and not isinstance(e, GseioError):
            raise _corrupt(e, kind, source) from e
        raise
    return _as_text(stream, head, source, kind)


def _as_text(stream: IO[bytes], head: bytes, source: Source, kind: Compression) -> IO[bytes]:
    """``stream`` itself, or transcoded to UTF-8 from the UTF-16/32 its byte-order mark declares."""
    try:
        found = _encoding.check_head(head, source, compression=kind)
    except BaseException:
        stream.close()
        raise
    return stream if found is None else _encoding.Transcoder(stream, *found, source)


class _Owning(io.RawIOBase):
    """A decompressing stream that counts what it expands to, names its file in errors and closes it."""

    _READALL_CHUNK = 16 << 20

    def __init__(
        self, stream: IO[bytes], raw: IO[bytes], *, source: Source, kind: Compression, limit: int | None
    ) -> None:
        super().__init__()
        self._stream, self._raw = stream, raw
        self._source, self._kind, self._limit, self._seen = source, kind, limit, 0
        self._pending = b""  # read by peek(), not yet returned

    def readable(self) -> bool:
        return True

    def peek(self, size: int) -> bytes:  # type: ignore[override]
        """The next ``size`` bytes (fewer at the end), returned again by the next reads."""
        while len(self._pending) < size and (chunk := self._read(size - len(self._pending))):
            self._pending += chunk
        return self._pending

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        if self._pending:
            data, self._pending = self._pending[:size], self._pending[size:]
            return data + self._read(size - len(data)) if len(data) < size else data
        return self._read(size)

    def _read(self, size: int) -> bytes:
        try:
            data = self._stream.read(size)
        except _DECOMPRESSION_ERRORS as e:
            raise _corrupt(e, self._kind, self._source) from e
        self._seen += len(data)
        if self._limit is not None and self._seen > self._limit:
            raise bomb_error(self._source, self._kind, self._source.stat_size(), self._limit)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readall(self) -> bytes:
        # chunk by chunk, so that the limit is checked before a bomb fills memory
        parts = []
        while chunk := self.read(self._READALL_CHUNK):
            parts.append(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def close(self) -> None:
        if not self.closed:
            try:
                self._stream.close()
            finally:
                self._raw.close()
        super().close()


def _gunzip(packed: bytes, source: Source) -> bytes:
    """Decompress a whole gzip file (every member) at once, never past the expansion limit."""
    limit = max_expanded_size(len(packed))
    view, parts, total = memoryview(packed), [], 0
    data, pos = view, len(packed)  # the first member gets all the input: no copies for one-member files
    # the trailer's size (exact for one member under 4 GiB) sizes the first output: 2x faster on small files
    hint = int.from_bytes(packed[-4:], "little") + 1
    inflater = _zlib.decompressobj(wbits=31)
    while True:
        room = 0 if limit is None else limit - total + 1
        part = inflater.decompress(data, min((n for n in (room, hint) if n), default=0))  # 0: unbounded
        hint = 0
        total += len(part)
        if limit is not None and total > limit:
            raise bomb_error(source, "gzip", len(packed), limit)
        parts.append(part)
        if inflater.eof:
            pos -= len(inflater.unused_data)
            if view[pos : pos + 2] != b"\x1f\x8b":  # the end, zero padding, or junk
                if bytes(view[pos:]).strip(b"\x00"):
                    raise zlib.error(f"{len(packed) - pos:,} bytes after the end of the gzip data are not gzip")
                break
            inflater = _zlib.decompressobj(wbits=31)  # another member (bgzip files hold thousands)
        elif inflater.unconsumed_tail:  # the output stopped at the size hint
            data = inflater.unconsumed_tail
            continue
        elif pos >= len(packed):
            raise EOFError("compressed file ended before the end-of-stream marker was reached")
        data = view[pos : pos + (256 << 10)]  # small chunks keep copies of unused input small
        pos += len(data)
    parts = [p for p in parts if p]
    return parts[0] if len(parts) == 1 else b"".join(parts)


def open_seekable(source: Source | str | os.PathLike[str]) -> IO[bytes]:
    """Open a file's decompressed bytes seekably (compressed files are decompressed into memory)."""
    source = as_source(source)
    if detect_compression(source) == "none":
        stream = open_decompressed(source)  # the file itself, once checked
        if stream.seekable():
            return stream
        with stream:  # transcoded text
            return io.BytesIO(stream.read())
    return io.BytesIO(read_bytes(source))


def open_hdf5(source: Source | str | os.PathLike[str]) -> Any:
    """Open an HDF5 file (on disk, in a tar, or compressed) read-only with h5py, once checked to be safe.

    Closing the returned ``h5py.File`` (or leaving its ``with`` block) also closes the
    underlying file handle.

    Raises
    ------
    ~gseio.errors.UnsafeInputError
        The file keeps data in other files (external storage, virtual datasets, external
        links): refused before any data is read (:func:`gseio.readers._hdf5.check_self_contained`).
    """
    import h5py

    from .readers._hdf5 import check_self_contained

    class _OwningFile(h5py.File):
        def close(self) -> None:
            try:
                super().close()
            finally:
                handle.close()

    handle = open_seekable(source)
    try:
        f = _OwningFile(handle, "r")
    except BaseException:
        handle.close()
        raise
    try:
        check_self_contained(f, source)
    except BaseException:
        f.close()
        raise
    return f


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
        The file cannot be read, its compression is truncated or corrupt, or it is an
        uncompressed HTML page (a failed download).
    DecompressionBombError
        The file expands beyond the limit set by :func:`expansion_limit`.
    FormatError
        A zip archive that does not hold exactly one file.
    """
    source = as_source(source)
    kind: Compression = "none"
    try:
        kind = detect_compression(source)
        if limit is None and kind == "gzip":
            with source.open() as fh:  # one-shot decompression is faster than streaming
                data = _gunzip(fh.read(), source)
            if (found := _encoding.check_head(data[:_HEAD_BYTES], source, compression=kind)) is not None:
                data = _encoding.transcode(data, *found, source)
        else:
            with open_decompressed(source) as fh:
                data = fh.read() if limit is None else fh.read(limit)
    except GseioError:
        raise
    except (*_DECOMPRESSION_ERRORS, ValueError) as e:
        raise _corrupt(e, kind, source) from e
    if limit is None and not data:
        suffix = "" if kind == "none" else f" after {kind} decompression"
        raise EmptyFileError("the file is empty" + suffix, path=source)
    return data


def strip_compression_suffix(name: str) -> str:
    """Drop a compression suffix (``.gz``, ``.bz2``, ``.xz``, ``.zip``) from a file name."""
    lower = name.lower()
    for suffix in COMPRESSION_SUFFIXES:
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return name
