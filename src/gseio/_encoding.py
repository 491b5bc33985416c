"""Text encodings and layers of compression, told from a file's first (decompressed) bytes.

Every reader parses UTF-8. A table saved as UTF-16 or UTF-32 with a byte-order mark (Excel's
"Unicode Text", PowerShell's ``>``) is transcoded to UTF-8 where its bytes are read, once
(:class:`Transcoder`, :func:`transcode`), so that every sniffer and reader sees UTF-8, in a
tar member or inside gzip alike. UTF-16 without a byte-order mark (a NUL byte after, or
before, every character) is refused with a hint rather than guessed; so is decompressed data
that starts with a compression magic again (gzip of gzip), which would otherwise be
"no reader recognises this file".
"""

from __future__ import annotations

import codecs
import io
from typing import IO

from ._source import Source
from .errors import CorruptFileError, FormatError

__all__ = ["Transcoder", "bom_encoding", "check_head", "transcode"]

#: Byte-order marks and the encodings they declare (UTF-32 first: its LE mark starts like UTF-16's).
BOMS = (
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)
#: Compression magics, for data found inside a compressed file.
_MAGIC = ((b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"), (b"PK\x03\x04", "zip"))
_UNDO = {"gzip": "gunzip", "bz2": "bunzip2", "xz": "unxz", "zip": "unzip"}
_PRINTABLE = frozenset(b"\t\n\r") | frozenset(range(0x20, 0x7F))


def bom_encoding(head: bytes) -> tuple[str, int] | None:
    """The encoding a byte-order mark at the start of ``head`` declares, and the mark's length."""
    return next(((name, len(bom)) for bom, name in BOMS if head.startswith(bom)), None)


def _utf16_without_bom(head: bytes) -> str | None:
    """``"LE"``/``"BE"`` when ``head`` reads as ASCII text in UTF-16 without a byte-order mark."""
    sample = head[: min(len(head), 1024) // 2 * 2]
    if len(sample) < 16:
        return None
    even, odd = sample[0::2], sample[1::2]
    for text, zeros, order in ((even, odd, "LE"), (odd, even, "BE")):
        if zeros.count(0) >= 0.9 * len(zeros) and sum(b in _PRINTABLE for b in text) >= 0.9 * len(text):
            return order
    return None


def check_head(head: bytes, source: Source, *, compression: str) -> tuple[str, int] | None:
    """Refuse what no reader can parse; return the encoding (and BOM length) to transcode from, if any.

    Parameters
    ----------
    head
        The first decompressed bytes (at least a few hundred, unless the file is shorter).
    source
        The file, named in errors.
    compression
        How the file itself is compressed (``"none"``, ``"gzip"``...): data inside a
        compressed file that starts with a compression magic again is refused.

    Raises
    ------
    FormatError
        The data is compressed twice, or is UTF-16 text without a byte-order mark.
    """
    if compression != "none":
        inner = next((name for magic, name in _MAGIC if head.startswith(magic)), None)
        if inner is not None:
            outer = {"bz2": "bzip2"}.get(compression, compression)
            raise FormatError(
                f"is compressed twice ({inner} data inside {outer}): its content is not text. Decompress it "
                f"once ({_UNDO.get(compression, 'decompress')} it; the result is {inner}-compressed, which gseio "
                "reads) and read that file instead",
                path=source,
            )
    found = bom_encoding(head)
    if found is None and (order := _utf16_without_bom(head)) is not None:
        raise FormatError(
            f"looks like UTF-16 text without a byte-order mark ({'little' if order == 'LE' else 'big'}-endian: "
            f"a NUL byte {'after' if order == 'LE' else 'before'} every character). Save it as UTF-8 (e.g. iconv "
            f"-f UTF-16{order} -t UTF-8 FILE > FILE.utf8.txt), or as UTF-16 with a byte-order mark, which gseio "
            "reads",
            path=source,
        )
    return found


def _invalid(e: UnicodeDecodeError, encoding: str, source: Source) -> CorruptFileError:
    return CorruptFileError(
        f"starts with a {encoding.upper()} byte-order mark but is not valid {encoding.upper()} ({e.reason}): a "
        "damaged file, or another encoding; save it as UTF-8",
        path=source,
    )


def transcode(data: bytes, encoding: str, bom: int, source: Source, *, final: bool = True) -> bytes:
    """``data`` (starting with its ``bom``-byte mark) as UTF-8; ``final=False`` for a head cut anywhere."""
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        return decoder.decode(memoryview(data)[bom:], final=final).encode("utf-8")
    except UnicodeDecodeError as e:
        raise _invalid(e, encoding, source) from e


class Transcoder(io.RawIOBase):
    """A stream of UTF-8 from a stream of UTF-16/32 whose byte-order mark (``bom`` bytes) is skipped.

    ``read(n)`` returns ``n`` bytes unless the data ends, as a buffered file does. Closing it
    closes the wrapped stream.
    """

    _CHUNK = 1 << 20

    def __init__(self, stream: IO[bytes], encoding: str, bom: int, source: Source) -> None:
        super().__init__()
        self._stream, self._encoding, self._source = stream, encoding, source
        self._decoder = codecs.getincrementaldecoder(encoding)()
        self._out, self._eof = bytearray(), False
        stream.read(bom)

    def readable(self) -> bool:
        return True

    def _fill(self, size: int) -> None:
        while len(self._out) < size and not self._eof:
            raw = self._stream.read(self._CHUNK)
            self._eof = not raw
            try:
                text = self._decoder.decode(raw, final=self._eof)
            except UnicodeDecodeError as e:
                raise _invalid(e, self._encoding, self._source) from e
            self._out += text.encode("utf-8")

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            self._fill(1 << 62)
            size = len(self._out)
        else:
            self._fill(size)
        data = bytes(self._out[:size])
        del self._out[:size]
        return data

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._stream.close()
        super().close()
