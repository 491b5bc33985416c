"""Entries given twice in a sparse matrix: a cell that lists one feature twice.

Matrix Market allows a coordinate to repeat, and scipy, anndata and Cell Ranger's readers add the
values up. No tool that writes count matrices writes one twice (Cell Ranger, STARsolo and bustools
write each coordinate once), so a repeat means a damaged file, or two matrices joined into one:
gseio refuses it rather than adding the counts up without a word.

The check runs on the CSR rows (cells) a reader made, a block of rows at a time: rows whose
feature indices increase (how the tools write them) have no repeat, and only blocks with a row
out of order are sorted to look for one.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ADVICE", "SUM_MTX", "first_repeat"]

#: Entries looked at a time (the temporaries of a block stay in the tens of MB).
BLOCK_ENTRIES = 1 << 22
#: What to do about a repeat, for the messages.
ADVICE = (
    "Cell Ranger, STARsolo and bustools never write a coordinate twice: the file is damaged, or two matrices "
    "were joined into one, and gseio does not add the two counts up silently. Rebuild the file from the tool's "
    "output"
)
#: How to add the repeats of a Matrix Market file up, when that is what they mean.
SUM_MTX = "; or, if the repeats are meant to be added up, do it first (scipy.io.mmread(path).tocsr() sums them)"


def first_repeat(indptr: np.ndarray, indices: np.ndarray, n_cols: int) -> tuple[int, int] | None:
    """``(row, column)`` (0-based) of the first entry given twice in CSR arrays, in row order; else ``None``.

    Rows need not be sorted; nothing is changed.
    """
    n_rows = indptr.size - 1
    start = 0
    while start < n_rows:
        stop = int(np.searchsorted(indptr, indptr[start] + BLOCK_ENTRIES, side="right")) - 1
        stop = min(max(stop, start + 1), n_rows)
        lo, hi = int(indptr[start]), int(indptr[stop])
        block = indices[lo:hi]
        if block.size > 1:
            increasing = block[1:] > block[:-1]
            starts = indptr[start + 1 : stop] - lo  # where the block's later rows start
            increasing[starts[(starts > 0) & (starts < block.size)] - 1] = True  # a row may start lower
            if not increasing.all() and (found := _sorted_repeat(indptr[start : stop + 1] - lo, block, n_cols)):
                return start + found[0], found[1]
        start = stop
    return None


def _sorted_repeat(indptr: np.ndarray, block: np.ndarray, n_cols: int) -> tuple[int, int] | None:
    """The lowest ``(row, column)`` repeated in a block of rows (``indptr`` relative to the block)."""
    rows = np.repeat(np.arange(indptr.size - 1, dtype=np.int64), np.diff(indptr))
    keys = rows * n_cols + block
    keys.sort()
    repeated = np.flatnonzero(keys[1:] == keys[:-1])
    if not repeated.size:
        return None
    key = int(keys[repeated[0]])
    return key // n_cols, key % n_cols
