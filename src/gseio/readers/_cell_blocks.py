"""A per-cell table too large for one block, read block by block with its repeated genes merged as it goes.

Real per-cell files fit in one block and never come here. A file that does not (millions of
lines: transcript- or exon-level tables, or a hostile file of one line repeated) is parsed a
block at a time; each block's gene column is dictionary-encoded by Arrow, so only its distinct
names are kept, with per name the first row, the number of rows, the sum and the first value.
Memory is then a block plus the distinct genes, not a Python object per line; names are
decoded once, at the end, for the distinct genes only.

The result equals the one-block reading: ``duplicate_genes="sum"`` sums a repeated gene's
counts here (block by block, in file order) instead of in the assembler (so fractional counts
of a repeated gene may differ in the last bit; integer counts sum exactly either way),
``"first"`` keeps its first count, ``"error"`` names the repeated genes in the same order.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

import numpy as np

from .._blocks import split_lines
from .._piece import Piece
from .._source import Source
from .._unit import ReadOptions
from ..errors import FormatError, InvalidValueError
from ..geo import cell_id_from_name
from ._gene_blocks import GeneBlockCache
from ._lines import RowLines
from ._table import HTSEQ_SPECIAL_PREFIX
from ._table_piece import duplicate_error

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["read_blocks"]

_WHITESPACE = re.compile(rb"[ \t]+")
#: Bytes of a large per-cell table parsed at once.
PARSE_BLOCK_BYTES = 2 << 20


@dataclasses.dataclass(slots=True)
class _Genes:
    """The distinct genes of a block (or of the whole file): per name, where and what."""

    names: pa.Array  # binary, in order of first appearance
    first_row: np.ndarray
    second_row: np.ndarray | None  # -1: once only (so far); None: not asked for
    count: np.ndarray
    total: np.ndarray  # sum of the counts, in file order
    first: np.ndarray  # the first count
    last: np.ndarray  # the last count (htseq-count's counters: the last line wins, as in one block)


def _distinct(codes: np.ndarray) -> np.ndarray:
    """Where each code first appears, by code (codes numbered in order of first appearance)."""
    if not codes.size:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.diff(np.maximum.accumulate(codes), prepend=-1) > 0)


def _group(names: pa.Array, rows: np.ndarray, count: np.ndarray, total: np.ndarray, first: np.ndarray,
           last: np.ndarray, second: np.ndarray | None) -> _Genes:  # fmt: skip
    """Merge entries that share a name; the entries come in file order (``second``: also find second rows)."""
    encoded = names.dictionary_encode()
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    n = len(encoded.dictionary)
    at = _distinct(codes)
    ends = np.zeros(n, dtype=np.int64)
    np.maximum.at(ends, codes, np.arange(codes.size))
    second_row = None if second is None else _second_rows(codes, rows, second, n)
    return _Genes(
        names=encoded.dictionary,
        first_row=rows[at],
        second_row=second_row,
        count=np.bincount(codes, weights=count, minlength=n).astype(np.int64),
        total=np.bincount(codes, weights=total, minlength=n),
        first=first[at],
        last=last[ends],
    )


def _second_rows(codes: np.ndarray, rows: np.ndarray, second: np.ndarray, n: int) -> np.ndarray:
    """Each name's second row: its first entry's own second row, or the first row of its next entry."""
    candidates = np.concatenate([rows, second[second >= 0]])
    owners = np.concatenate([codes, codes[second >= 0]])
    order = np.lexsort((candidates, owners))
    owners, candidates = owners[order], candidates[order]
    starts = np.searchsorted(owners, np.arange(n))
    has_two = np.append(starts[1:], owners.size) - starts >= 2
    out = np.full(n, -1, dtype=np.int64)
    out[has_two] = candidates[starts[has_two] + 1]
    return out


def _block_genes(genes: pa.Array, values: np.ndarray, first_row: int, *, seconds: bool) -> _Genes:
    """One block's distinct genes (``seconds``: also each one's second row)."""
    import pyarrow.compute as pc

    encoded = genes.dictionary_encode()
    names = encoded.dictionary
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    n = len(names)
    at = _distinct(codes)
    first = values[at]
    last = first.copy()
    special = np.flatnonzero(pc.starts_with(names, HTSEQ_SPECIAL_PREFIX).to_numpy(zero_copy_only=False))
    for k in special.tolist():  # htseq-count's counters (a few): the last line of each wins
        last[k] = values[np.flatnonzero(codes == k)[-1]]
    second_row = None
    if seconds:
        again = np.ones(codes.size, dtype=bool)
        again[at] = False
        repeats, where = np.unique(codes[again], return_index=True)
        second_row = np.full(n, -1, dtype=np.int64)
        second_row[repeats] = first_row + np.flatnonzero(again)[where]
    return _Genes(
        names=names,
        first_row=first_row + at,
        second_row=second_row,
        count=np.bincount(codes, minlength=n),
        total=np.bincount(codes, weights=values, minlength=n),
        first=first,
        last=last,
    )


def _merge(parts: list[_Genes]) -> _Genes:
    import pyarrow as pa

    def joined(name: str) -> np.ndarray:
        return np.concatenate([getattr(p, name) for p in parts])

    names = pa.concat_arrays([p.names for p in parts])
    seconds = None if parts[0].second_row is None else joined("second_row")
    return _group(names, joined("first_row"), joined("count"), joined("total"), joined("first"), joined("last"),
                  seconds)  # fmt: skip


def read_blocks(first: bytes, more: Iterable[bytes], source: Source, options: ReadOptions) -> Piece:
    """Read a per-cell table whose first block is ``first`` and whose further blocks are ``more``."""
    from .cell_table import GENERIC_VALUE_HEADERS, _block_info, _Layout, _parse, _prepare, _strip_comments

    more = iter(more)
    while _first_line(first) is None and (block := next(more, None)) is not None:
        first += block  # only blank or comment lines so far: the header or first data line is further
    layout = _prepare(first, source)
    line = _first_line(first)
    blanks = line is not None and b"\t" not in line and b"," not in line
    lines = RowLines()
    parts: list[_Genes] = []
    line = first.count(b"\n") + 1  # the file's line number of the next block's first line
    bodies = _bodies((layout.body, layout.first_line), more, line, blanks=blanks, strip_comments=_strip_comments)
    for body, first_line in bodies:
        for part in split_lines(body, PARSE_BLOCK_BYTES):
            rows = lines.n_rows
            if lines.add(part, first_line):  # else only empty lines
                genes, values = _parse(_Layout(part, layout.delimiter, None, first_line), source)
                parts.append(_block_genes(genes, values, rows, seconds=options.duplicate_genes == "error"))
            first_line += part.count(b"\n")
    if not parts:
        raise FormatError("the file has a header but no data rows", path=source)
    genes = _merge(parts)
    del parts
    policy = options.duplicate_genes
    # names are decoded once each (distinct names: the policy only sees names that decode alike)
    cache: GeneBlockCache | None = options.cache  # the files of a series share their genes
    info = cache.get(genes.names, policy) if cache is not None else None
    if info is None:
        info = _block_info(genes.names, policy, source, lambda k: lines(int(genes.first_row[k])))
        if cache is not None:
            cache.put(genes.names, policy, info)
    rows = np.arange(len(genes.names)) if info.keep is None else info.keep
    repeated = genes.count[rows] > 1
    n_dup = int((genes.count[rows] - 1).sum()) + info.block.n_duplicates
    if n_dup and policy == "error":
        assert genes.second_row is not None
        dups = info.block.names[np.flatnonzero(repeated)[np.argsort(genes.second_row[rows][repeated])]]
        raise duplicate_error(n_dup, [str(d) for d in dups], source)
    values = genes.first[rows] if policy == "first" else genes.total[rows]
    if not np.isfinite(values).all():
        k = int(np.flatnonzero(~np.isfinite(values))[0])
        raise InvalidValueError(
            f"the counts of gene {info.block.names[k]!r}, which the file repeats (line "
            f"{lines(int(genes.first_row[rows[k]]))} first), sum beyond the largest float; they are not counts. "
            "Pass duplicate_genes='first' or 'error', or fix the file",
            path=source,
        )
    block = dataclasses.replace(info.block, n_duplicates=n_dup)
    nonzero = np.flatnonzero(values)
    header = layout.header
    cell = header[1] if header is not None and header[1].lower() not in GENERIC_VALUE_HEADERS else None
    return Piece(
        source=str(source),
        cells=[cell or cell_id_from_name(source.name)],
        genes=block,
        indptr=np.array([0, nonzero.size], dtype=np.int64),
        indices=nonzero.astype(np.int32),
        data=values[nonzero],
        obs={name: genes.last[k : k + 1] for name, k in zip(info.special_names, info.special_rows, strict=True)},
    )


def _bodies(
    first: tuple[bytes, int],
    more: Iterable[bytes],
    line: int,
    *,
    blanks: bool,
    strip_comments: Callable[[bytes], bytes],
) -> Iterator[tuple[bytes, int]]:
    """The first block's body, then each further block normalised like it, with their first line numbers."""
    yield first
    for block in more:
        body = strip_comments(block)
        if blanks:  # runs of blanks separate fields, as in the first block
            body = re.sub(rb"(?m)^\t|\t(?=\r?$)", b"", _WHITESPACE.sub(b"\t", body))
        yield body, line
        line += block.count(b"\n")


def _first_line(data: bytes) -> bytes | None:
    """The first line that is neither blank nor a comment (the header or the first data line), or ``None``."""
    start = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    while start < len(data):
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end
        line = data[start:end]
        if line.strip() and not line.startswith(b"#"):
            return line
        start = end + 1
    return None
