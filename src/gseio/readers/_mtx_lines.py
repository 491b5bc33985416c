"""Strict syntax checks for Matrix Market text that the general parser would read leniently.

fast_matrix_market reads a number as far as it parses and ignores the rest of the line:
``1 1 12x`` is read as 12, ``1 1 0x10`` as 16 and ``1 1 5 7`` as 5, so a damaged line
would become a wrong count without a word. The Arrow fast path (:mod:`._mtx_arrow`) is
strict already; the chunks it declines (other whitespace, blank lines, a bad line) are
checked here before the general parser sees them, and the first bad line is named.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..errors import FormatError, InvalidValueError

if TYPE_CHECKING:
    from .._source import Source

__all__ = ["check_body", "check_size_line", "too_large"]

_BLANK = rb"[ \t]*"
_INDEX = rb"\d+"
# unambiguous (one way to match a line), and entries are matched possessively: no backtracking
_VALUE = rb"[+-]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[nN][aA][nN]|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?)"
_SEP = rb"[ \t]+"
#: One line of a body: an entry (row, column[, value]) or a blank line. Values of an ``integer``
#: matrix may be written as decimals (``19.0``): they are read as written, like ``real`` ones.
_LINE = {
    kind: rb"(?:" + _BLANK + _INDEX + _SEP + _INDEX + value + rb")?" + _BLANK + rb"\r?"
    for kind, value in (("pattern", b""), ("value", _SEP + _VALUE))
}
_BODY = {kind: re.compile(rb"(?:" + line + rb"\n)*+" + line) for kind, line in _LINE.items()}
_ONE = {kind: re.compile(line) for kind, line in _LINE.items()}
_NUMBER = re.compile(_VALUE)
_SIZE = re.compile(rb"[ \t]*\d+[ \t]+\d+[ \t]+\d+[ \t]*\r?\n?")


def check_body(text: bytes, field: str, first_line: int, source: Source) -> None:
    """Raise on the first line of ``text`` that is neither blank nor a well-formed entry.

    Parameters
    ----------
    text
        Whole lines of a body; its first line is line ``first_line`` of the file.
    field
        The header's field (``integer``, ``real``, ``double``, ``pattern``).
    first_line
        The file's line number of the first line of ``text``, for the message.
    source
        The matrix file, named in errors.

    Raises
    ------
    FormatError
        A line with another number of fields, or an index that is not a whole number.
    InvalidValueError
        A value that is not a number.
    """
    kind = "pattern" if field == "pattern" else "value"
    if _BODY[kind].fullmatch(text):
        return
    for i, line in enumerate(text.split(b"\n")):  # found to be bad: say where
        if _ONE[kind].fullmatch(line):
            continue
        where = f"line {first_line + i}"
        fields = line.split()
        n = 2 if kind == "pattern" else 3
        shown = line[:80].decode("utf-8", "replace")
        if len(fields) != n:
            raise FormatError(
                f"{where} has {len(fields)} fields, not {n} ({'row, column' + ', value' * (n == 3)}): {shown!r}",
                path=source,
            )
        if not (fields[0].isdigit() and fields[1].isdigit()):
            raise FormatError(f"{where}: the row and column must be whole numbers: {shown!r}", path=source)
        if not _NUMBER.fullmatch(fields[2]):
            value = fields[2].decode("utf-8", "replace")
            raise InvalidValueError(f"{where}: the value {value!r} is not a number", path=source)
        raise FormatError(f"{where} is not a Matrix Market entry: {shown!r}", path=source)  # pragma: no cover


def check_size_line(header: bytes, source: Source) -> None:
    """Raise unless the header's last line (the size line) is three whole numbers: rows, columns, entries."""
    lines = header.rstrip(b"\n").split(b"\n")
    size = lines[-1] if len(lines) > 1 else b""
    if not _SIZE.fullmatch(size):
        shown = size[:80].decode("utf-8", "replace")
        raise FormatError(
            f"line {len(lines)} must be the size line '<rows> <columns> <entries>', not {shown!r}", path=source
        )


def too_large(rows: int, columns: int, entries: int, source: Source) -> FormatError:
    """The error for a size line whose arrays cannot be allocated (a damaged one, usually)."""
    return FormatError(
        f"its size line declares a {rows} x {columns} matrix with {entries} entries: arrays that large cannot be "
        "allocated (a damaged size line, or a matrix larger than this machine's memory)",
        path=source,
    )
