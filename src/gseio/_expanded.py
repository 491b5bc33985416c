"""How large a file is once decompressed, known without decompressing it (or only a little of it).

Used to size a build before any file is parsed (:func:`gseio.assemble.estimate_matrix_bytes`):

- gzip: the trailer's size field, exact for a file of one member under 4 GiB. Files that may hold
  more (bgzip's blocks, several members, a trailer smaller than the file) or that could have
  wrapped past 4 GiB are sampled instead (the wrapped trailer is then corrected by multiples of
  4 GiB toward the sample).
- zip: the sizes its central directory records (exact).
- xz: the sizes its index records (exact), sampled when the index cannot be read.
- bzip2 records no size: sampled.

Sampling decompresses the first :data:`SAMPLE_OUTPUT` bytes (at most) and scales the
compressed size by the ratio seen, plus :data:`SAMPLE_MARGIN`; count tables compress evenly,
so the estimate is close (a file shorter than the sample is measured exactly).
"""

from __future__ import annotations

import bz2
import lzma
import zipfile
from typing import IO

from . import _open
from ._source import Source
from .errors import GseioError

__all__ = ["expanded_size"]

#: At most this much output is decompressed to sample a ratio.
SAMPLE_OUTPUT = 4 << 20
_SAMPLE_STEP = 1024  # compressed bytes fed at a time while sampling
_WRAP = 1 << 32
#: Deflate expands at most ~1032x: a gzip file smaller than this cannot pass 4 GiB.
_MAX_RATIO = 1032
_NO_WRAP_BELOW = _WRAP // _MAX_RATIO
#: Sampled sizes are raised by this much: output comes in lumps (bzip2's are 900 kB), so the
#: ratio seen when sampling stops may fall short of the file's.
SAMPLE_MARGIN = 1.25


def expanded_size(source: Source) -> int:
    """The decompressed size of ``source`` (its own size when it is not compressed).

    Never raises for a damaged or unreadable file: its stored size is returned, and the
    build reports the file when it reads it.
    """
    size = source.stat_size()
    try:
        kind = _open.detect_compression(source)
        if kind == "none":
            return size
        with source.open() as fh:
            if kind == "gzip":
                return _gzip_size(fh, size)
            if kind == "zip":
                return sum(i.file_size for i in zipfile.ZipFile(fh).infolist() if not i.is_dir())
            if kind == "xz":
                return _xz_size(fh, size) or _sampled(fh, size, lzma.LZMADecompressor)
            return _sampled(fh, size, bz2.BZ2Decompressor)
    except (*_open._DECOMPRESSION_ERRORS, ValueError, RuntimeError, IndexError, GseioError):
        return size


def _gzip_size(fh: IO[bytes], size: int) -> int:
    head = fh.read(18)
    fh.seek(size - 4)
    trailer = int.from_bytes(fh.read(4), "little")
    fh.seek(0)
    bgzip = len(head) > 13 and head[3] & 4 and head[12:14] == b"BC"  # an extra field naming bgzip blocks
    plausible = size // 2 <= trailer <= _MAX_RATIO * size + 1024  # else another member's, or damage
    if not bgzip and plausible and size < _NO_WRAP_BELOW:
        return trailer  # one member (as far as can be told) that cannot have wrapped: exact
    sampled = _sampled(fh, size, lambda: _open._zlib.decompressobj(wbits=31))
    if bgzip or not plausible:
        return sampled  # the trailer is the last member's only
    wraps = max(0, round((sampled - trailer) / _WRAP))
    return trailer + wraps * _WRAP


def _sampled(fh: IO[bytes], size: int, decompressor: object) -> int:
    """``size`` scaled by the ratio of the file's first :data:`SAMPLE_OUTPUT` bytes of output."""
    inflater = decompressor()  # type: ignore[operator]
    fed = out = 0
    while out < SAMPLE_OUTPUT:
        data = fh.read(_SAMPLE_STEP)
        if not data:
            return out  # the whole file was decompressed: exact
        fed += len(data)
        out += len(inflater.decompress(data, SAMPLE_OUTPUT - out + 1))
        fed -= len(getattr(inflater, "unconsumed_tail", b""))  # zlib hands back what it did not reach
        while out < SAMPLE_OUTPUT and getattr(inflater, "eof", False) and inflater.unused_data:
            data, inflater = inflater.unused_data, decompressor()  # type: ignore[operator]  # another member
            out += len(inflater.decompress(data, SAMPLE_OUTPUT - out + 1))
        if getattr(inflater, "eof", False) and not inflater.unused_data and not fh.read(1):
            return out  # the end of the data
    return max(out, int(SAMPLE_MARGIN * size * out / max(fed, 1)))


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return value, pos
        shift += 7


def _xz_size(fh: IO[bytes], size: int) -> int | None:
    """The total of the uncompressed sizes the index of a one-stream xz file records, else ``None``."""
    if size < 24:
        return None
    fh.seek(size - 12)
    footer = fh.read(12)
    if footer[10:12] != b"YZ":
        return None  # stream padding, or not xz after all
    index_size = (int.from_bytes(footer[4:8], "little") + 1) * 4
    if index_size > min(size - 24, 64 << 20):
        return None
    fh.seek(size - 12 - index_size)
    index = fh.read(index_size)
    fh.seek(0)
    if index[:1] != b"\x00":
        return None
    n, pos = _varint(index, 1)
    blocks = total = 0
    for _ in range(n):
        unpadded, pos = _varint(index, pos)
        uncompressed, pos = _varint(index, pos)
        blocks += -(-unpadded // 4) * 4
        total += uncompressed
    if 12 + blocks + index_size + 12 != size:
        return None  # more than one stream: this index tells only of the last
    return total
