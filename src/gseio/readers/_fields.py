"""Rows of a block of table text split into fields with numpy: positions, never a Python object per field.

A block is whole lines; ``bounds`` holds, for each row, the position before its first field and
the position of the separator that ends each field (the last one is the line feed), so that field
``k`` of a row is ``bounds[k] + 1`` up to ``bounds[k + 1]``. Quotes are followed by parity (a
delimiter after an odd number of quotes is inside a quoted field), which holds when every quote
opens or closes a field (:func:`well_formed`); other blocks are split line by line by the caller.
"""

from __future__ import annotations

import numpy as np

__all__ = ["gather", "lone_cr_to_lf", "runs", "text_field", "value_fields", "well_formed"]

_NL, _CR = 10, 13


def lone_cr_to_lf(text: bytes) -> bytes:
    """A carriage return not followed by a line feed ends a line (as for Arrow): make it a line feed."""
    arr = np.frombuffer(text, dtype=np.uint8)
    cr = np.flatnonzero(arr == _CR)
    lone = cr[arr[np.minimum(cr + 1, arr.size - 1)] != _NL]
    if not lone.size:
        return text
    out = arr.copy()
    out[lone] = _NL
    return out.tobytes()


def well_formed(arr: np.ndarray, quotes: np.ndarray, delimiter: int) -> bool:
    """Whether every quote opens a field or closes one (``""`` inside a quoted field included)."""
    opening, closing = quotes[0::2], quotes[1::2]
    before = arr[np.maximum(opening - 1, 0)]
    escaped = np.isin(opening - 1, closing)
    opens = (opening == 0) | (before == delimiter) | (before == _NL) | escaped
    after = arr[np.minimum(closing + 1, arr.size - 1)]
    closes = (after == delimiter) | (after == _NL) | (after == _CR) | np.isin(closing + 1, opening)
    return bool(opens.all() and closes.all())


def runs(columns: list[int]) -> list[tuple[int, int]]:
    """Sorted columns as runs of consecutive columns ``[first, last]``."""
    out: list[tuple[int, int]] = []
    for j in columns:
        if out and out[-1][1] == j - 1:
            out[-1] = (out[-1][0], j)
        else:
            out.append((j, j))
    return out


def gather(arr: np.ndarray, bounds: np.ndarray, spans: list[tuple[int, int]], *, joint: int) -> np.ndarray:
    """Each row's fields in ``spans`` (runs of columns), fields joined by ``joint``, rows ending with a line feed.

    ``bounds[:, k] + 1 .. bounds[:, k + 1]`` is field ``k`` of each row with its ending separator.
    """
    delta = np.zeros(arr.size + 1, dtype=np.int8)
    out = arr.copy()
    for n, (first, last) in enumerate(spans):
        np.add.at(delta, bounds[:, first] + 1, 1)
        np.add.at(delta, bounds[:, last + 1] + 1, -1)
        if joint == _NL:
            out[bounds[:, first + 1 : last + 1]] = _NL
        out[bounds[:, last + 1]] = _NL if n == len(spans) - 1 else joint
    keep = np.cumsum(delta[:-1], dtype=np.int8).view(bool)
    return out[keep]


def text_field(arr: np.ndarray, bounds: np.ndarray, cr: np.ndarray, j: int) -> object:
    """Field ``j`` of every row as an Arrow binary array (its bytes gathered one by one: labels are short)."""
    import pyarrow as pa

    starts = bounds[:, j] + 1
    lengths = bounds[:, j + 1] - starts
    if j == bounds.shape[1] - 2:
        lengths -= cr
    offsets = np.zeros(lengths.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    data = arr[np.repeat(starts - offsets[:-1], lengths) + np.arange(offsets[-1])]
    return pa.Array.from_buffers(
        pa.binary(), lengths.size, [None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data)]
    )


def value_fields(
    arr: np.ndarray, bounds: np.ndarray, cr: np.ndarray, spans: list[tuple[int, int]], delimiter: int
) -> object | None:
    """The fields of the columns in ``spans`` (runs of columns) of every row, row by row, as one binary array.

    The bytes of each run are kept but for its delimiters: ``None`` when a field holds a delimiter
    (a quoted one), which the CSV stream then reads.
    """
    import pyarrow as pa

    last = bounds.shape[1] - 2
    delta = np.zeros(arr.size + 1, dtype=np.int8)
    lengths = []
    for first, final in spans:
        delta[bounds[:, first] + 1] += 1
        delta[bounds[:, final + 1] - (cr if final == last else 0)] -= 1
        part = np.diff(bounds[:, first : final + 2], axis=1) - 1
        if final == last:
            part[:, -1] -= cr
        lengths.append(part)
    keep = np.cumsum(delta[:-1], dtype=np.int8).view(bool)
    keep &= arr != delimiter
    data = arr[keep]
    del keep, delta
    sizes = lengths[0] if len(lengths) == 1 else np.concatenate(lengths, axis=1)
    offsets = np.zeros(sizes.size + 1, dtype=np.int32)
    np.cumsum(sizes.ravel(), out=offsets[1:])
    if offsets[-1] != data.size:
        return None
    return pa.Array.from_buffers(pa.binary(), sizes.size, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
