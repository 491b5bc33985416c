"""The body of a wide table, block by block, straight into sparse rows.

Each block of lines is split on its separators with numpy (one pass, quote-aware). The value
fields of all its rows become one Arrow binary array, cast to float64 by Arrow's number parser
(the one its CSV reader uses), and the labels and annotations binary arrays. Arrow's CSV reader
on the wide rows would build one column per table column and block: 200,000 columns cost it
seconds and gigabytes per block, whatever the rows. A block whose values do not all cast (a
missing value, a word, blanks or quotes around a number) is converted again by the CSV reader,
one value per line, which reads missing-value markers, blanks and quotes as before and says
which value is bad; so values and messages are the ones the whole-table reader gave, bit for bit.

Each block's non-zero values are appended to growing arrays (CSR rows over the value
columns); labels and annotations stay Arrow binary arrays until the whole table is read, so
the working set is a block, whatever the table's size.
"""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from .. import _memory
from .._blocks import split_lines
from .._piece import check_counts, exact_in_float32
from ..errors import FormatError, InvalidValueError
from ._fields import gather, lone_cr_to_lf, runs, text_field, value_fields, well_formed
from ._lines import RowLines, find_unparsable
from ._table import decode_column

__all__ = ["PARSE_BLOCK_BYTES", "BodyParser", "ParsedBody"]

#: Bytes of table text parsed at once (a longer line is parsed alone).
PARSE_BLOCK_BYTES = 2 << 20

_NL, _CR = 10, 13
_QUOTE = 34


@dataclass(slots=True)
class ParsedBody:
    """A table body: per-row labels and annotations (Arrow binary), CSR rows over the value columns."""

    labels: object  # pyarrow.Array
    annotations: dict[int, object]  # column -> pyarrow.Array
    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    line: object  # callable: row -> the file's line number


@dataclass(slots=True)
class BodyParser:
    """Parse blocks of body lines of a table with a known layout.

    Parameters
    ----------
    delimiter
        The field separator (one character).
    header
        The header fields (for messages), one per column.
    text_columns
        The label column (0) and the per-gene annotation columns, read as text.
    value_columns
        The columns of values, in order.
    path
        The source, named in errors.
    """

    delimiter: str
    header: list[str]
    text_columns: list[int]
    value_columns: list[int]
    path: object
    n_rows: int = 0
    _labels: list[object] = field(default_factory=list)
    _annotations: dict[int, list[object]] = field(default_factory=dict)
    _counts: list[np.ndarray] = field(default_factory=list)
    _indices: _memory.Arena = field(default_factory=lambda: _memory.Arena(np.int32))
    _data: _memory.Arena = field(default_factory=lambda: _memory.Arena(np.float32))
    line: RowLines = field(default_factory=RowLines)  # the file's line number of each data row
    _text_runs: list[tuple[int, int]] = field(default_factory=list, init=False)
    _value_runs: list[tuple[int, int]] = field(default_factory=list, init=False)

    @property
    def width(self) -> int:
        return len(self.header)

    def __post_init__(self) -> None:
        self._text_runs = runs(self.text_columns)
        self._value_runs = runs(self.value_columns)

    def parse(self, blocks: Iterable[bytes], first_line: int) -> ParsedBody:
        """Parse every block (whole lines; the first starts at the file's line ``first_line``)."""
        for block in blocks:
            for part in split_lines(block, PARSE_BLOCK_BYTES):
                self._block(part, first_line)
                first_line += part.count(b"\n")
        return self._finish()

    # -- one block ----------------------------------------------------------------------------

    def _block(self, text: bytes, first_line: int) -> None:
        if not text.endswith(b"\n"):
            text += b"\n"
        if b"\r" in text:
            text = lone_cr_to_lf(text)
        arr = np.frombuffer(text, dtype=np.uint8)
        ends = np.flatnonzero(arr == _NL)
        starts = np.concatenate(([0], ends[:-1] + 1))
        length = ends - starts
        blank = (length == 0) | ((length == 1) & (arr[starts] == _CR))
        if blank.all():
            return
        rows = np.flatnonzero(~blank)
        separators = self._separators(arr, text, starts, ends, rows, first_line)
        self.line.add(text, first_line)  # before any message: they name lines
        if separators is None:  # quotes the fast split cannot follow: split line by line
            text_stream, value_stream = self._split_slowly(text, first_line + rows)
            self._convert(self._texts(text_stream), None, lambda: value_stream, rows.size)
            return
        starts, ends = starts[rows], ends[rows]
        bounds = np.concatenate([starts[:, None] - 1, separators, ends[:, None]], axis=1)
        del separators  # field k of each row: bounds[:, k] + 1 up to its separator bounds[:, k + 1]
        cr = arr[ends - 1] == _CR  # CRLF: the last field ends before the carriage return
        if b'"' in text:  # quoted labels: Arrow's CSV reader unquotes them as before
            texts = self._texts(gather(arr, bounds, self._text_runs, joint=ord(self.delimiter)))
        else:
            texts = [text_field(arr, bounds, cr, j) for j in self.text_columns]
        values = value_fields(arr, bounds, cr, self._value_runs, ord(self.delimiter))
        self._convert(texts, values, lambda: gather(arr, bounds, self._value_runs, joint=_NL), rows.size)

    def _texts(self, stream: object) -> list[object]:
        """The text columns of a block, from their CSV stream (quotes and all)."""
        import pyarrow as pa

        names = [f"c{j}" for j in self.text_columns]
        table = _read(stream, names, {name: pa.binary() for name in names}, self.delimiter)
        return [column.combine_chunks() for column in table.columns]

    def _separators(
        self, arr: np.ndarray, text: bytes, starts: np.ndarray, ends: np.ndarray, rows: np.ndarray, first_line: int
    ) -> np.ndarray | None:
        """Each row's field separators, ``(rows, width - 1)``; ``None`` when quotes need the slow split."""
        delimiters = np.flatnonzero(arr == ord(self.delimiter))
        if b'"' in text:
            quotes = np.flatnonzero(arr == _QUOTE)
            if not well_formed(arr, quotes, ord(self.delimiter)):
                return None
            inside = np.flatnonzero(np.searchsorted(quotes, ends) % 2 == 1)
            if inside.size:  # a line ends inside quotes: the quote opened before it is never closed on its line
                opener = int(quotes[np.searchsorted(quotes, ends[inside[0]]) - 1])
                at = int(np.searchsorted(ends, opener))
                what = "label" if opener == starts[at] else "field"
                raise FormatError(
                    f"line {first_line + at}: a quoted {what} spans lines; the file has an unbalanced quote",
                    path=self.path,
                )
            delimiters = delimiters[np.searchsorted(quotes, delimiters) % 2 == 0]
        per_row = np.diff(np.searchsorted(delimiters, ends), prepend=0)[rows]
        bad = np.flatnonzero(per_row != self.width - 1)
        if bad.size:
            row = arr[starts[rows[bad[0]]] : ends[rows[bad[0]]]].tobytes().rstrip(b"\r")
            text = row[:80].decode("utf-8", "replace")
            raise FormatError(
                f"line {first_line + rows[bad[0]]}: expected {self.width} columns, got {per_row[bad[0]] + 1}: "
                f"{text!r}",
                path=self.path,
            )
        return delimiters.reshape(rows.size, self.width - 1)

    def _split_slowly(self, text: bytes, lines: np.ndarray) -> tuple[bytes, bytes]:
        """Split every line with Python's CSV reader (quotes inside fields) and re-quote the narrow streams."""
        text_out, value_out = io.StringIO(), io.StringIO()
        texts = csv.writer(text_out, delimiter=self.delimiter, lineterminator="\n")
        values = csv.writer(value_out, delimiter=self.delimiter, lineterminator="\n")
        rows = [r for r in text.decode("utf-8", "surrogateescape").split("\n") if r not in ("", "\r")]
        for line, row in zip(lines.tolist(), rows, strict=True):
            fields = next(csv.reader([row.rstrip("\r")], delimiter=self.delimiter, quotechar='"'), [])
            if len(fields) != self.width:
                shown = row[:80].encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                raise FormatError(
                    f"line {line}: expected {self.width} columns, got {len(fields)}: {shown!r}", path=self.path
                )
            texts.writerow([fields[j] for j in self.text_columns])
            values.writerows([fields[j]] for j in self.value_columns)
        return (
            text_out.getvalue().encode("utf-8", "surrogateescape"),
            value_out.getvalue().encode("utf-8", "surrogateescape"),
        )

    def _convert(self, texts: list[object], values: object, stream: Callable[[], object], n: int) -> None:
        """Convert a block's values (a binary array, else their CSV ``stream``), check them, keep the non-zeros.

        The binary array is cast to float64 by Arrow (the parser of its CSV reader, without its
        null markers and blank trimming); a block where the cast fails or gives a NaN is read
        again from its CSV stream, which says which value is missing or not a number, as before.
        """
        import pyarrow as pa
        import pyarrow.compute as pc

        labels = texts[0]
        nv = len(self.value_columns)
        column = None
        if values is not None:
            with contextlib.suppress(pa.ArrowInvalid):
                column = pc.cast(values, pa.float64())
                if pc.any(pc.is_nan(column)).as_py():
                    column = None
        if column is None:
            column = self._parse_stream(stream(), labels, nv)
        if len(labels) != n or len(column) != n * nv:  # pragma: no cover - the split and Arrow disagree
            raise FormatError(
                f"lines {self.line(self.n_rows)}-{self.line(self.n_rows + n - 1)} could not be split",
                path=self.path,
            )
        empty = np.flatnonzero(pc.binary_length(labels).to_numpy(zero_copy_only=False) == 0)
        if empty.size:
            raise FormatError(
                f"line {self.line(self.n_rows + int(empty[0]))} has an empty label in the first column",
                path=self.path,
            )
        values = column.to_numpy(zero_copy_only=False)
        self._check(values, column, labels, n, nv)
        nonzero = np.flatnonzero(values)
        self._counts.append(np.diff(np.searchsorted(nonzero, np.arange(n + 1) * nv)))
        self._indices.append((nonzero % nv).astype(np.int32))
        kept = values[nonzero]
        if self._data.dtype == np.float32 and not exact_in_float32(kept):
            self._data.widen(np.float64)  # once: float32 would no longer hold every value exactly
        self._data.append(kept)
        self._labels.append(labels)
        for k, j in enumerate(self.text_columns[1:], start=1):
            self._annotations.setdefault(j, []).append(texts[k])
        self.n_rows += n

    def _parse_stream(self, stream: object, labels: object, nv: int) -> object:
        """The values of a block from their CSV stream (one per line): Arrow's CSV conversion, with its errors."""
        import pyarrow as pa

        try:
            return _read(stream, ["v"], {"v": pa.float64()}, self.delimiter).column(0).combine_chunks()
        except pa.ArrowInvalid as e:
            if "conversion error" not in str(e):
                raise FormatError(str(e), path=self.path) from e
            raw = _read(stream, ["v"], {"v": pa.binary()}, self.delimiter).column(0).to_pylist()
            found = find_unparsable(str(e), {0: raw})
            if found is None:  # pragma: no cover - Arrow refused a value the number pattern accepts
                raise FormatError(str(e), path=self.path) from e
            i, j = divmod(found[1], nv)
            value = raw[found[1]].decode("utf-8", "replace")
            raise InvalidValueError(
                f"{self._where_is(labels, i, j)}: {value!r} is not a number", path=self.path
            ) from e

    def _check(self, values: np.ndarray, column: object, labels: object, n: int, nv: int) -> None:
        """Raise at the first bad value, column by column (missing first, then negative, NaN or infinite)."""
        missing = column.null_count  # type: ignore[attr-defined]
        bad = ~np.isfinite(values)
        bad |= values < 0
        if not missing and not bad.any():
            return
        null = np.zeros(values.size, dtype=bool)
        if missing:
            null = column.is_null().to_numpy(zero_copy_only=False)  # type: ignore[attr-defined]
            bad &= ~null
        null, bad = null.reshape(n, nv), bad.reshape(n, nv)
        j = int(np.flatnonzero((null | bad).any(axis=0))[0])
        where = lambda i: self._where_is(labels, i, j)  # noqa: E731
        if null[:, j].any():
            i = int(np.argmax(null[:, j]))
            raise InvalidValueError(f"{where(i)}: the value is missing or NaN", path=self.path)
        check_counts(values.reshape(n, nv)[:, j], self.path, where)

    def _where_is(self, labels: object, i: int, j: int) -> str:
        label = decode_column(labels.slice(i, 1))[0]  # type: ignore[attr-defined]
        column = self.value_columns[j]
        return f"line {self.line(self.n_rows + i)} ({label!r}), column {column + 1} ({self.header[column]!r})"

    def _finish(self) -> ParsedBody:
        import pyarrow as pa

        counts = np.concatenate(self._counts) if self._counts else np.zeros(0, np.int64)
        indptr = np.zeros(counts.size + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        labels = pa.concat_arrays(self._labels) if self._labels else pa.array([], pa.binary())
        annotations = {j: pa.concat_arrays(parts) for j, parts in self._annotations.items()}
        return ParsedBody(labels, annotations, indptr, self._indices.take(), self._data.take(), self.line)


def _read(stream: object, names: list[str], types: dict, delimiter: str) -> object:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    buffer = pa.py_buffer(stream)
    return pacsv.read_csv(
        pa.BufferReader(buffer),
        read_options=pacsv.ReadOptions(
            column_names=names, use_threads=False, block_size=max(1 << 20, buffer.size + 1)
        ),
        parse_options=pacsv.ParseOptions(delimiter=delimiter, quote_char='"', ignore_empty_lines=False),
        convert_options=pacsv.ConvertOptions(column_types=types),
    )
