"""Matrix Market matrices for the 10x family: parse fast, check strictly, orient, build CSR.

A body is parsed a few MB of decompressed text at a time (:data:`_CHUNK_BYTES`): the
text of a matrix (often 100 MB per sample) is never held whole. Each chunk goes first to
Arrow's CSV reader (:mod:`._mtx_arrow`), which parses the plain ``row col value`` lines
every tool writes without holding the GIL, so the samples of a series are parsed on all
cores at once. A chunk it declines (other whitespace, a bad value or index) goes to
fast_matrix_market (bundled with scipy >= 1.12), which reads every valid file and names
the line of any error. Each chunk is checked and copied into arrays sized once from the
size line: float32 values while every value is an integer float32 holds exactly (what the
engine would convert them to anyway), and an axis whose indices come in order (the cells
of a Cell Ranger matrix) as counts per index instead of an index per entry. The CSR row
pointers of such an axis are those counts summed, without a sort.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .. import _memory, _open
from .._piece import FLOAT32_EXACT, check_counts
from ..errors import CorruptFileError, FormatError, InvalidValueError
from . import _mtx_arrow, _mtx_lines

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._source import Source


@dataclass(slots=True)
class Csr:
    """CSR arrays of cells x local features."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray

    def compact(self, mask: np.ndarray) -> None:
        """Keep only the entries where ``mask`` is true."""
        kept = np.zeros(mask.size + 1, dtype=np.int64)
        np.cumsum(mask, out=kept[1:])
        self.indptr = kept[self.indptr]
        self.indices = self.indices[mask]
        self.data = self.data[mask]

    def select_features(self, keep: np.ndarray | None, n_features: int) -> None:
        """Keep the features ``keep`` (in that order), renumbering the indices."""
        if keep is None:
            return
        remap = np.full(n_features, -1, dtype=np.int32)
        remap[keep] = np.arange(keep.size, dtype=np.int32)
        self.indices = remap[self.indices]
        self.compact(self.indices >= 0)


def coo_to_csr(cells: np.ndarray, features: np.ndarray, data: np.ndarray, n_cells: int) -> Csr:
    """CSR rows from triplets; no sort when the cells come in order (as Cell Ranger writes them)."""
    if cells.size > 1 and not bool(np.all(cells[1:] >= cells[:-1])):
        order = np.argsort(cells, kind="stable")
        cells, features, data = cells[order], features[order], data[order]
    # on sorted cells, a binary search per cell: no nnz-sized temporary (bincount would copy to int64)
    indptr = np.searchsorted(cells, np.arange(n_cells + 1, dtype=cells.dtype)).astype(np.int64, copy=False)
    return Csr(indptr, features.astype(np.int32, copy=False), data)


def check_values(data: np.ndarray, source: Source, where: Callable[[int], str]) -> None:
    """Raise :class:`InvalidValueError` for a negative, NaN or infinite count (``where(k)`` names entry k)."""
    check_counts(data, source, where)


@dataclass(slots=True)
class Triplets:
    """A Matrix Market coordinate body: values, and per axis (rows, columns) where they lie.

    ``index[axis]`` holds each entry's 0-based index on that axis, or is ``None`` when the
    entries came in order along it: ``counts[axis]`` then holds how many lie at each index.
    ``first_line`` is the file's line of entry 1 when entry k is on line ``first_line + k - 1``
    (no blank line before an entry), else ``None``.
    """

    shape: tuple[int, int]
    index: list[np.ndarray | None]
    counts: list[np.ndarray | None]
    data: np.ndarray
    first_line: int | None = None

    def entries(self, axis: int) -> np.ndarray:
        """Each entry's index on ``axis``."""
        index = self.index[axis]
        if index is not None:
            return index
        dtype = np.int32 if self.shape[axis] < 2**31 else np.int64
        return np.repeat(np.arange(self.shape[axis], dtype=dtype), self.counts[axis])


#: Decompressed text parsed at a time. Small keeps the parser's temporaries small (the
#: values it parses are float64 until checked); much smaller costs time per call.
_CHUNK_BYTES = 2 << 20


def read_matrix_market(source: Source) -> Triplets:
    """Parse a (compressed) Matrix Market coordinate file, streaming it through the parser.

    Raises
    ------
    FormatError
        Not a coordinate ``general`` Matrix Market file, an entry outside the declared
        shape, or fewer/more entries than the size line declares.
    InvalidValueError
        A value that is not a number, or a negative, NaN or infinite one.
    CorruptFileError
        The compression is truncated or corrupt.
    """
    try:
        from scipy.io._fast_matrix_market import _get_read_cursor  # noqa: F401
    except ImportError:  # pragma: no cover - scipy without fast_matrix_market
        return _read_matrix_market_public(source)
    with _open.open_decompressed(source) as stream:
        try:
            header_text, pending = _split_header(stream)
            _mtx_lines.check_size_line(header_text, source)
            header = _parse(header_text, source, lambda n: n).header
            _check_header(header.format, header.field, header.symmetry, source)
            try:
                body = _Body(header, source)
            except (MemoryError, OSError) as e:  # its arrays are sized from the size line, which may be damaged
                raise _mtx_lines.too_large(header.nrows, header.ncols, header.nnz, source) from e
            line = header_text.count(b"\n") + (not header_text.endswith(b"\n"))
            body.first_line = line + 1
            while more := stream.read(_CHUNK_BYTES):
                cut = more.rfind(b"\n") + 1
                if cut == 0:  # a line longer than a chunk
                    pending += more
                    continue
                line += body.add((pending, memoryview(more)[:cut]), line)
                pending = more[cut:]
            if pending.strip():  # a last line without its newline: the parser wants one
                body.add((pending, b"\n"), line)
        except (OSError, EOFError) as e:
            raise CorruptFileError(f"is corrupt or truncated: {e}", path=source) from e
        finally:
            _mtx_arrow.release()
    return body.finish()


def _split_header(stream: io.RawIOBase) -> tuple[bytes, bytes]:
    """The header (banner, comment lines, size line) and the text read after it."""
    text, start, banner = b"", 0, True
    while True:
        end = text.find(b"\n", start)
        if end < 0:
            if more := stream.read(_CHUNK_BYTES):
                text += more
                continue
            end = len(text)
            if start >= end:  # no size line: the parser will say what is missing
                return text, b""
        line = text[start:end].strip()
        start = end + 1
        if not banner and line and not line.startswith(b"%"):
            return text[:start], text[start:]
        banner = False


def _parse(text: bytes, source: Source, line_of: Callable[[int], int]):
    """A fast_matrix_market cursor on ``text``, its errors typed and their lines renumbered by ``line_of``."""
    from scipy.io._fast_matrix_market import _get_read_cursor

    try:
        cursor, _ = _get_read_cursor(io.BytesIO(text))
    except (ValueError, OverflowError) as e:  # OverflowError: a number too large for its field
        raise _parse_error(e, source, line_of) from e
    return cursor


class _Body:
    """The entries of a body, gathered chunk by chunk into arrays sized from the header."""

    def __init__(self, header, source: Source) -> None:
        self.shape = (int(header.nrows), int(header.ncols))
        self.nnz, self.field, self.source, self.done = int(header.nnz), header.field, source, 0
        self.dtype = np.int32 if max(self.shape) < 2**31 else np.int64
        # counts per index only where they are smaller than an index per entry
        self.counts: list[np.ndarray | None] = [
            np.zeros(n, dtype=np.int64) if 2 * n <= self.nnz else None for n in self.shape
        ]
        self.index = [None if c is not None else _memory.empty(self.nnz, self.dtype) for c in self.counts]
        self.last = [0, 0]
        self.data = _memory.empty(self.nnz, np.float32)
        self.first_line: int | None = None  # the file's line of the first entry, while entries are one a line

    def add(self, parts: tuple[bytes | memoryview, ...], line: int) -> int:
        """Parse the lines of ``parts`` (text after file line ``line``); returns how many lines they hold."""
        text, before = b"".join(parts), self.done
        fast = _mtx_arrow.parse(text, field=self.field, shape=self.shape)
        if fast is not None and self.done + fast[0].size <= self.nnz:
            rows, cols, values = fast  # one entry per line: the fast path declines blank lines
            where = self._place(rows.size)
            np.subtract(rows, 1, out=where[0])
            np.subtract(cols, 1, out=where[1])
            self._lines_follow(line, before, gap=False)
            self._commit(where, np.ones(rows.size) if values is None else values)
            return rows.size
        _mtx_lines.check_body(text, self.field, line + 1, self.source)  # the general parser reads leniently
        n_lines = text.count(b"\n")
        if self.done + n_lines <= self.nnz and self._parse((text,), n_lines, lambda n: line + n - 2):
            self._lines_follow(line, before, gap=False)
            return n_lines
        # blank lines, which the parser skips: drop them to know the count of entries
        lines = b"".join(parts).split(b"\n")
        kept = [i for i, text in enumerate(lines) if text.strip()]
        if self.done + len(kept) > self.nnz:
            extra = line + kept[self.nnz - self.done] + 1
            raise FormatError(
                f"holds more entries than its size line declares ({self.nnz}): line {extra} is one too many",
                path=self.source,
            )
        if kept:  # (the parser must not be given an empty body: it crashes)
            self._lines_follow(line, before, gap=kept[-1] != len(kept) - 1)
            text = b"\n".join([*(lines[i] for i in kept), b""])
            self._parse((text,), len(kept), lambda n: line + kept[n - 3] + 1)
        return n_lines

    def _lines_follow(self, line: int, before: int, *, gap: bool) -> None:
        """Forget the entries' lines once a blank line comes before an entry.

        In the chunk after file line ``line`` (``gap``), or before it: the body's lines so far are
        not the ``before`` entries so far.
        """
        if self.first_line is not None and (gap or line + 1 - self.first_line != before):
            self.first_line = None

    def _parse(self, parts: tuple[bytes | memoryview, ...], count: int, line_of: Callable[[int], int]) -> bool:
        """Parse ``count`` entries into place; ``False`` when the text holds fewer (blank lines)."""
        from scipy.io._fast_matrix_market import _fmm_core

        synthetic = b"%%%%MatrixMarket matrix coordinate %s general\n%d %d %d\n" % (
            self.field.encode(), *self.shape, count)  # fmt: skip
        cursor = _parse(b"".join((synthetic, *parts)), self.source, line_of)
        where = self._place(count)
        values = np.empty(count, dtype=np.float64)
        try:
            _fmm_core.read_body_coo(cursor, where[0], where[1], values)
        except (ValueError, OverflowError) as e:
            if "Truncated file" in str(e):
                return False
            raise _parse_error(e, self.source, line_of) from e
        self._commit(where, values)
        return True

    def _place(self, count: int) -> list[np.ndarray]:
        """Where the next ``count`` entries' 0-based indices go, per axis."""
        lo, hi = self.done, self.done + count
        return [self.index[a][lo:hi] if self.index[a] is not None else np.empty(count, self.dtype) for a in (0, 1)]

    def _commit(self, where: list[np.ndarray], values: np.ndarray) -> None:
        """Check the values of entries whose indices are in ``where`` (see :meth:`_place`), and keep them."""
        lo, hi = self.done, self.done + values.size
        rows, cols = where
        if values.size == 0:
            return
        if values.dtype.kind == "f" or values.min() < 0:
            check_values(
                values, self.source, lambda k: f"entry {lo + k + 1} (row {rows[k] + 1}, column {cols[k] + 1})"
            )
        if self.data.dtype == np.float32 and not _exact_in_float32(values):
            widened = _memory.empty(self.nnz, np.float64)  # once: float32 would no longer be exact
            widened[:lo] = self.data[:lo]
            self.data = widened
        self.data[lo:hi] = values
        for axis in (0, 1):
            if self.counts[axis] is not None:
                self._count(axis, where[axis])
        self.done = hi

    def _count(self, axis: int, chunk: np.ndarray) -> None:
        """Add a chunk's indices to the counts of ``axis``, or give the axis an index per entry."""
        counts = self.counts[axis]
        if chunk[0] >= self.last[axis] and bool(np.all(chunk[1:] >= chunk[:-1])):
            first, last = int(chunk[0]), int(chunk[-1])
            bounds = np.searchsorted(chunk, np.arange(first, last + 2, dtype=chunk.dtype))
            counts[first : last + 1] += np.diff(bounds)
            self.last[axis] = last
            return
        index = _memory.empty(self.nnz, self.dtype)  # out of order: counts can no longer say where entries lie
        index[: self.done] = np.repeat(np.arange(counts.size, dtype=self.dtype), counts)
        index[self.done : self.done + chunk.size] = chunk
        self.index[axis], self.counts[axis] = index, None

    def finish(self) -> Triplets:
        """The triplets, once every declared entry was read."""
        if self.done < self.nnz:
            raise FormatError(
                f"holds fewer entries than its size line declares ({self.done} of {self.nnz}); "
                "the file is probably cut short",
                path=self.source,
            )
        return Triplets(self.shape, self.index, self.counts, self.data, self.first_line)


def _exact_in_float32(values: np.ndarray) -> bool:
    """Whether every (finite, non-negative) value is an integer below 2**24, as the engine asks of float32."""
    if values.dtype.kind in "iu":
        return values.size == 0 or int(values.max()) < FLOAT32_EXACT
    return bool(np.all(values < FLOAT32_EXACT)) and bool(np.all(np.floor(values) == values))


def _read_matrix_market_public(source: Source) -> Triplets:  # pragma: no cover - old scipy
    import scipy.io

    try:
        matrix = scipy.io.mmread(io.BytesIO(_open.read_bytes(source)))
    except ValueError as e:
        raise _parse_error(e, source) from e
    if not hasattr(matrix, "row"):
        raise FormatError("a dense ('array') Matrix Market file; 10x matrices are 'coordinate'", path=source)
    rows, cols = matrix.row, matrix.col
    check_values(matrix.data, source, lambda k: f"entry {k + 1} (row {rows[k] + 1}, column {cols[k] + 1})")
    return Triplets(matrix.shape, [rows, cols], [None, None], matrix.data.astype(np.float64))


def _check_header(fmt: str, field: str, symmetry: str, source: Source) -> None:
    if fmt != "coordinate":
        raise FormatError(
            f"a Matrix Market {fmt!r} file; count matrices are sparse 'coordinate' files", path=source
        )
    if field == "complex":
        raise FormatError("complex Matrix Market values are not counts", path=source)
    if symmetry != "general":
        raise FormatError(
            f"a {symmetry!r} Matrix Market file; a cells/genes count matrix is 'general'", path=source
        )


def _parse_error(e: Exception, source: Source, line_of: Callable[[int], int] | None = None) -> Exception:
    """A typed error for a parser's message; ``line_of`` maps the parser's line numbers to the file's."""
    message = str(e)
    if line_of is not None:  # the parser numbers the lines of a chunk, after a synthetic header
        message = re.sub(r"\bLine (\d+)", lambda m: f"Line {line_of(int(m[1]))}", message)
    if "Invalid" in message and "value" in message:
        return InvalidValueError(f"a value is not a number ({message})", path=source)
    if "Missing banner" in message:
        return FormatError("not a Matrix Market file (its first line is not '%%MatrixMarket ...')", path=source)
    if "Truncated file" in message:
        return FormatError(
            f"holds fewer entries than its size line declares ({message}); the file is probably cut short",
            path=source,
        )
    if "out of bounds" in message:
        return FormatError(f"an entry lies outside the shape its size line declares ({message})", path=source)
    if "Too many lines" in message:
        return FormatError(f"holds more entries than its size line declares ({message})", path=source)
    return FormatError(f"not a valid Matrix Market file: {message}", path=source)
