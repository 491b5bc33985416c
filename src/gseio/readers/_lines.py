"""Where a bad value sits in a text file: line numbers of parsed rows, and the value a parser refused.

Arrow's CSV reader skips empty lines and names neither the row nor the line of a value it
cannot convert (``In CSV column #1: CSV conversion error to double: invalid value '12x'``).
Error messages name the file's line, so these helpers map rows back to lines and find the
refused value again. They run only when a file is found to be bad.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["RowLines", "find_unparsable", "line_of_row", "row_lines"]

_CONVERSION = re.compile(
    r"In CSV column #(\d+): (?:Row #\d+: )?CSV conversion error to \w+: invalid value '(.*)'", re.DOTALL
)
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
#: What Arrow reads as a missing value (null) in a float column, or as infinite.
_NOT_TEXT = frozenset(
    {"", "na", "nan", "-nan", "n/a", "null", "#n/a", "inf", "-inf", "+inf", "infinity", "-infinity", "+infinity"}
)


def row_lines(body: bytes, first_line: int) -> np.ndarray:
    """The file line number of each non-empty line of ``body`` (the rows a CSV parser yields).

    ``first_line`` is the file's line number of the body's first line.
    """
    arr = np.frombuffer(body, dtype=np.uint8)
    if not arr.size:
        return np.zeros(0, dtype=np.int64)
    ends = np.flatnonzero(arr == 10)
    if arr[-1] != 10:
        ends = np.append(ends, arr.size)
    starts = np.concatenate(([0], ends[:-1] + 1))
    length = ends - starts
    empty = (length == 0) | ((length == 1) & (arr[np.minimum(starts, arr.size - 1)] == 13))
    return first_line + np.flatnonzero(~empty)


def line_of_row(body: bytes, row: int, first_line: int) -> int:
    """The file line number of parsed row ``row`` (0-based; empty lines are not rows)."""
    lines = row_lines(body, first_line)
    return int(lines[row]) if 0 <= row < lines.size else first_line + row


def _is_value(raw: bytes) -> bool:
    text = raw.strip().decode("utf-8", "replace")
    return bool(_NUMBER.match(text)) or text.lower() in _NOT_TEXT


def find_unparsable(message: str, columns: Mapping[int, Sequence[bytes | None]]) -> tuple[int, int] | None:
    """``(column, row)`` of the value a CSV parser could not convert to a number, else ``None``.

    Parameters
    ----------
    message
        The parser's error; Arrow names the column (0-based) and the refused value, trimmed.
    columns
        The raw values of the numeric columns, by column number, as read without conversion.
    """
    match = _CONVERSION.search(message)
    if match and int(match[1]) in columns:
        column, refused = int(match[1]), match[2]
        for row, raw in enumerate(columns[column]):
            if raw is not None and raw.strip().decode("utf-8", "replace") == refused:
                return column, row
    for column, values in columns.items():  # the message did not say: the first value that is no number
        for row, raw in enumerate(values):
            if raw is not None and not _is_value(raw):
                return column, row
    return None


class RowLines:
    """The file line of each parsed row of a body read block by block (empty lines are not rows).

    Only the empty lines of each block are kept, not a line number per row.
    """

    def __init__(self) -> None:
        self._first_rows: list[int] = []
        self._blocks: list[tuple[int, np.ndarray]] = []  # (first line, rows before each empty line)
        self.n_rows = 0

    def add(self, body: bytes, first_line: int) -> int:
        """Record the next block (whole lines starting at the file's line ``first_line``); its row count."""
        if b"\n\n" in body or b"\n\r\n" in body or body.startswith((b"\n", b"\r\n")) or body.endswith(b"\n\r"):
            arr = np.frombuffer(body, dtype=np.uint8)
            ends = np.flatnonzero(arr == 10)
            if arr.size and arr[-1] != 10:
                ends = np.append(ends, arr.size)
            starts = np.concatenate(([0], ends[:-1] + 1))
            length = ends - starts
            empty = np.flatnonzero((length == 0) | ((length == 1) & (arr[np.minimum(starts, arr.size - 1)] == 13)))
            n_lines = ends.size
        else:  # no empty line (the usual case): counting the lines is enough
            empty = np.zeros(0, dtype=np.int64)
            n_lines = body.count(b"\n") + (not body.endswith(b"\n") and body not in (b"", b"\r"))
        self._first_rows.append(self.n_rows)
        self._blocks.append((first_line, empty - np.arange(empty.size)))
        self.n_rows += n_lines - empty.size
        return n_lines - empty.size

    def __call__(self, row: int) -> int:
        """The file line of row ``row`` (0-based, counted over every block)."""
        import bisect

        k = bisect.bisect_right(self._first_rows, row) - 1
        if k < 0 or row >= self.n_rows:
            return row + 1
        first_line, gaps = self._blocks[k]
        local = row - self._first_rows[k]
        return first_line + local + int(np.searchsorted(gaps, local, side="right"))
