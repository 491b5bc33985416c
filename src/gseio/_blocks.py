"""A file's decompressed bytes in blocks of whole lines, so that text readers never hold a whole file.

:func:`line_blocks` is the streaming counterpart of :func:`gseio._open.read_bytes`: same
compression detection, limits and errors, but it yields blocks of about ``block_bytes``
that each end with a line end (a line longer than a block is one block), and the last
block as the file ends. A file no larger than one block comes as exactly one block, with
no copy: readers keep their one-shot path for the usual small files and switch to
block-by-block parsing only for large ones.

gzip, most of GEO, is inflated here rather than through a stream object: the first output
is sized by the gzip trailer (exact for one member under 4 GiB), which makes small files
about twice as fast, as in :func:`gseio._open.read_bytes`.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import IO

from . import _encoding, _open
from ._limits import bomb_error, max_expanded_size
from ._source import Source
from .errors import EmptyFileError, GseioError

__all__ = ["BLOCK_BYTES", "line_blocks", "split_lines"]

#: Default size of a block of lines.
BLOCK_BYTES = 16 << 20
#: Compressed bytes read at a time.
_RAW_BYTES = 4 << 20


def line_blocks(source: Source, *, block_bytes: int = BLOCK_BYTES) -> Iterator[bytes]:
    """Yield the decompressed file in blocks of whole lines.

    Parameters
    ----------
    source
        The file (gzip, bzip2, xz, single-member zip or uncompressed).
    block_bytes
        About how large each block is; every block but the last ends with a line feed.

    Raises
    ------
    EmptyFileError
        The file is empty, or decompresses to nothing.
    CorruptFileError
        The file cannot be read, its compression is truncated or corrupt (raised when the
        damage is reached), or it is an uncompressed HTML page.
    DecompressionBombError
        The file expands beyond the limit (see :func:`gseio._open.expansion_limit`).
    FormatError
        A zip archive that does not hold exactly one file.
    """
    kind = "none"
    try:
        kind = _open.detect_compression(source)
        parts = _gzip_parts(source, block_bytes) if kind == "gzip" else _stream_parts(source, block_bytes)
        if kind == "gzip":
            parts = _checked(parts, source, block_bytes)
        yield from _whole_lines(parts, block_bytes, source, kind)
    except GseioError:
        raise
    except (*_open._DECOMPRESSION_ERRORS, ValueError) as e:
        raise _open._corrupt(e, kind, source) from e


def _whole_lines(parts: Iterator[bytes], block_bytes: int, source: Source, kind: str) -> Iterator[bytes]:
    """Cut decompressed parts into blocks that end with a line end."""
    pending: list[bytes] = []
    size = 0
    seen = False
    for part in parts:
        seen = seen or bool(part)
        pending.append(part)
        size += len(part)
        if size < block_bytes:
            continue
        data = pending[0] if len(pending) == 1 else b"".join(pending)
        cut = data.rfind(b"\n") + 1
        if cut == 0:  # one line longer than a block so far: keep reading
            pending, size = [data], len(data)
            continue
        yield data if cut == len(data) else data[:cut]
        rest = data[cut:]
        pending, size = ([rest] if rest else []), len(rest)
    if not seen:
        suffix = "" if kind == "none" else f" after {kind} decompression"
        raise EmptyFileError("the file is empty" + suffix, path=source)
    if pending:
        yield pending[0] if len(pending) == 1 else b"".join(pending)


def _checked(parts: Iterator[bytes], source: Source, block_bytes: int) -> Iterator[bytes]:
    """The inflated parts, once their start is checked as :func:`gseio._open.read_bytes` checks it.

    Data compressed twice is refused; UTF-16/32 text is streamed through the transcoding reader
    instead (rare: the fast inflater is kept for the UTF-8 files of GEO).
    """
    first = next(parts, b"")
    while len(first) < _open._HEAD_BYTES and (more := next(parts, None)) is not None:
        first += more
    if _encoding.check_head(first[: _open._HEAD_BYTES], source, compression="gzip") is not None:
        parts.close()  # type: ignore[attr-defined]
        yield from _stream_parts(source, block_bytes)
        return
    if first:
        yield first
    yield from parts


def _stream_parts(source: Source, block_bytes: int) -> Iterator[bytes]:
    with _open.open_decompressed(source) as fh:
        while part := fh.read(block_bytes):
            yield part


def _gzip_parts(source: Source, block_bytes: int) -> Iterator[bytes]:
    """Inflate every member of a gzip file, ``block_bytes`` of output at most at a time."""
    compressed = source.stat_size()
    limit = max_expanded_size(compressed)
    with source.open() as fh:
        hint = _trailer_size(fh, compressed)
        data = fh.read(_RAW_BYTES)
        inflater = _open._zlib.decompressobj(wbits=31)
        total = 0
        while True:
            room = block_bytes if limit is None else min(block_bytes, limit - total + 1)
            if hint:  # the first output sized exactly: one allocation, no growth
                room, hint = min(room, hint + 1), 0
            part = inflater.decompress(data, room)
            total += len(part)
            if limit is not None and total > limit:
                raise bomb_error(source, "gzip", compressed, limit)
            if part:
                yield part
            if inflater.eof:
                data = inflater.unused_data
                if len(data) < 2:
                    data += fh.read(_RAW_BYTES)
                if not data:
                    return
                if data[:2] != b"\x1f\x8b":  # zero padding, or junk
                    _check_padding(data, fh, compressed)
                    return
                inflater = _open._zlib.decompressobj(wbits=31)  # another member (bgzip files hold thousands)
            elif inflater.unconsumed_tail:  # the output stopped at the block's size
                data = inflater.unconsumed_tail
            else:
                data = fh.read(_RAW_BYTES)
                if not data:
                    raise EOFError("compressed file ended before the end-of-stream marker was reached")


def _trailer_size(fh: IO[bytes], compressed: int) -> int:
    """The gzip trailer's size field (the last member's size modulo 4 GiB), or 0."""
    if compressed < 18:
        return 0
    fh.seek(compressed - 4)
    size = int.from_bytes(fh.read(4), "little")
    fh.seek(0)
    return size


def _check_padding(data: bytes, fh: IO[bytes], compressed: int) -> None:
    position = fh.tell() - len(data)
    while data:
        if data.strip(b"\x00"):
            raise zlib.error(f"{compressed - position:,} bytes after the end of the gzip data are not gzip")
        data = fh.read(_RAW_BYTES)


def split_lines(data: bytes, size: int) -> Iterator[bytes]:
    """``data`` (whole lines) in pieces of whole lines of about ``size`` bytes (``data`` itself when smaller)."""
    start = 0
    while start < len(data):
        end = data.find(b"\n", min(len(data), start + size) - 1)
        end = len(data) if end < 0 else end + 1
        yield data if start == 0 and end == len(data) else data[start:end]
        start = end
