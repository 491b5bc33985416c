"""The fast path of the Matrix Market body parser: a chunk of plain lines through Arrow's CSV reader.

Cell Ranger, STARsolo, kallisto|bustools and scipy all write a body as ``row col value``
lines with single spaces. Arrow's C++ CSV reader parses such a chunk into typed columns
without holding the GIL, so the units of a series are parsed on all cores at once
(fast_matrix_market, the general parser, runs its C++ while holding the GIL, so two
threads parsing two samples take turns).

:func:`parse` accepts a chunk only when it is exactly that: every line three (or, for a
``pattern`` matrix, two) single-space-separated numbers of the header's field, every
index inside the declared shape. Anything else (tabs, runs of spaces, a bad value, an
entry outside the shape) makes it return ``None``, and the caller hands the chunk to the
general parser, which accepts every valid file and names the line of any error.
"""

from __future__ import annotations

from functools import cache

import numpy as np


@cache
def _options(field: str, wide: bool) -> tuple:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    index = pa.int64() if wide else pa.int32()
    value = {"integer": pa.int32(), "pattern": None}.get(field, pa.float64())
    names = ["row", "col"] + (["value"] if value is not None else [])
    types = {"row": index, "col": index} | ({"value": value} if value is not None else {})
    # a blank line is declined (the caller counts lines as entries to name the line of a later error)
    parse = pacsv.ParseOptions(delimiter=" ", quote_char=False, escape_char=False, ignore_empty_lines=False)
    # nothing converts to null: an empty field is an error, not a missing value
    convert = pacsv.ConvertOptions(column_types=types, null_values=[], strings_can_be_null=False)
    return names, parse, convert


def parse(
    text: bytes, *, field: str, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | None:
    """The 1-based rows, columns and values (``None`` for ``pattern``) of ``text``'s lines, or ``None``.

    ``text`` holds whole lines (it ends with a newline). ``None`` means "not the plain
    layout, or something is wrong": parse the chunk with the general parser instead.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if b"x" in text or b"X" in text:  # Arrow reads integers such as 0x10 as hexadecimal; Matrix Market has none
        return None
    names, parse_options, convert_options = _options(field, max(shape) >= 2**31)
    read_options = pacsv.ReadOptions(column_names=names, block_size=len(text) + 1, use_threads=False)
    try:
        table = pacsv.read_csv(
            pa.BufferReader(text),
            read_options=read_options,
            parse_options=parse_options,
            convert_options=convert_options,
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    columns = [table.column(i) for i in range(table.num_columns)]
    if any(c.null_count for c in columns):
        return None
    arrays = [c.to_numpy() for c in columns]
    for axis in (0, 1):
        index = arrays[axis]
        if index.size and (index.min() < 1 or index.max() > shape[axis]):
            return None
    return arrays[0], arrays[1], arrays[2] if len(arrays) == 3 else None


def release() -> None:
    """Give the memory Arrow's pool keeps for reuse back to the OS (tens of MB after a matrix)."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
