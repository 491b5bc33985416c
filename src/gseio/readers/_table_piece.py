"""A parsed wide table as a :class:`~gseio._piece.Piece`: CSR rows of its cells over its genes.

htseq-count's counters (``__no_feature``...) are kept apart as ``obs`` columns, the duplicate-gene
policy is applied, and a cell id given twice in one table is refused.
"""

from __future__ import annotations

import numpy as np

from .. import _memory
from .._piece import GeneBlock, Piece, check_unique_cells
from ..errors import FormatError
from . import _names
from ._table import HTSEQ_SPECIAL_PREFIX, Table

__all__ = ["build_piece", "duplicate_error", "gene_rows"]


def gene_rows(names: np.ndarray, policy: str, path: object) -> tuple[np.ndarray, np.ndarray, int]:
    """Split gene positions from htseq-count counters and apply the duplicate-gene policy.

    Returns the positions of the genes kept, the positions of the ``__`` counters and how
    many rows repeated a gene name.
    """
    import pandas as pd

    special = np.flatnonzero(np.char.startswith(np.asarray(names).astype(str), HTSEQ_SPECIAL_PREFIX))
    is_gene = np.ones(len(names), dtype=bool)
    is_gene[special] = False
    genes = np.flatnonzero(is_gene)
    duplicated = pd.Index(names[genes]).duplicated()
    n_dup = int(duplicated.sum())
    if n_dup and policy == "error":
        raise duplicate_error(n_dup, list(pd.unique(names[genes][duplicated])), path)
    if n_dup and policy == "first":
        genes = genes[~duplicated]
    return genes, special, n_dup


def duplicate_error(n_dup: int, repeated: list[str], path: object) -> FormatError:
    """The error for ``duplicate_genes="error"``: ``n_dup`` rows repeat the genes ``repeated`` (in order)."""
    return FormatError(
        f"{n_dup} rows repeat a gene name ({', '.join(map(str, repeated[:5]))}"
        f"{', ...' if len(repeated) > 5 else ''}); pass duplicate_genes='sum' or 'first'",
        path=path,
    )


def build_piece(
    table: Table,
    *,
    genes_by_cells: bool,
    policy: str,
    path: object,
    values: str = "counts",
    notes: dict[str, str] | None = None,
) -> Piece:
    """Turn a parsed table into CSR rows (cells) over its genes, without a dense copy.

    htseq-count's counters (``__no_feature``...) become ``obs`` columns ``htseq_no_feature``...;
    per-gene annotations go to the :class:`GeneBlock` (only when genes are rows).
    """
    notes = dict(notes or {})
    if genes_by_cells:
        gene_names, cells = table.labels, [str(c) for c in table.columns]
    else:
        gene_names, cells = np.array(table.columns, dtype=object), [str(c) for c in table.labels]
    numbers = table.column_numbers or [k + 2 for k in range(len(table.columns))]
    unnamed = next((k for k, c in enumerate(table.columns) if not str(c).strip()), None)
    if unnamed is not None:
        what = "cell id" if genes_by_cells else "gene name"
        raise FormatError(f"header column {numbers[unnamed]} has no name (no {what})", path=path)
    line = table.line or (lambda k: k + 2)
    by_column, by_line = (lambda k: f"header column {numbers[k]}"), (lambda k: f"line {line(k)}")
    # names are checked (and stripped) before repeats are looked for: "GENE3 " is "GENE3"
    cleaned = _names.clean(cells, what="cell id", path=path, where=by_column if genes_by_cells else by_line)
    cleaned.into(notes, "cell_names")
    cells = list(cleaned.names)
    cleaned = _names.clean(gene_names, what="gene name", path=path, where=by_line if genes_by_cells else by_column)
    cleaned.into(notes, "gene_names")
    gene_names = cleaned.names
    check_unique_cells(cells, path, by_column if genes_by_cells else by_line)
    keep, special, n_dup = gene_rows(gene_names, policy, path)
    special_names = ["htseq_" + str(gene_names[s])[len(HTSEQ_SPECIAL_PREFIX) :] for s in special]
    annotations: dict[str, np.ndarray] = {}
    matrix = (table.indptr, table.indices, table.data)
    if genes_by_cells:  # each value column is one cell: the table's rows are the piece's columns
        annotations = {k: v[keep] for k, v in table.annotations.items()}
        obs = {name: _row(*matrix, s, len(cells)) for name, s in zip(special_names, special, strict=True)}
        indptr, indices, data = _transpose(*matrix, keep, len(cells))
    else:  # each value column is one gene: the table's rows are the piece's rows, its columns subset
        if table.annotations:
            notes["annotations"] = f"per-cell text columns ignored: {', '.join(table.annotations)}"
        obs = {name: _column(*matrix, s) for name, s in zip(special_names, special, strict=True)}
        indptr, indices, data = _select(*matrix, keep, len(gene_names))
    del matrix
    block = GeneBlock.from_names(gene_names[keep], n_duplicates=n_dup, annotations=annotations)
    return Piece(
        source=str(path),
        cells=cells,
        genes=block,
        indptr=indptr,
        indices=indices,
        data=data,
        obs=obs,
        values=values,
        notes=notes,
    )


#: Stored values handled at once when rows are re-sorted or subset (bounds the temporaries).
BLOCK_NNZ = 1 << 20


def _row(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, row: int, width: int) -> np.ndarray:
    """Row ``row`` of a CSR matrix, dense (float64)."""
    out = np.zeros(width)
    start, stop = indptr[row], indptr[row + 1]
    out[indices[start:stop]] = data[start:stop]
    return out


def _column(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, column: int) -> np.ndarray:
    """Column ``column`` of a CSR matrix, dense (float64)."""
    out = np.zeros(indptr.size - 1)
    for start in range(0, indices.size, BLOCK_NNZ):
        hits = start + np.flatnonzero(indices[start : start + BLOCK_NNZ] == column)
        out[np.searchsorted(indptr, hits, side="right") - 1] = data[hits]
    return out


def _row_blocks(indptr: np.ndarray, rows: np.ndarray) -> list[np.ndarray]:
    """``rows`` in consecutive runs holding about :data:`BLOCK_NNZ` stored values each."""
    ends = np.cumsum(np.diff(indptr)[rows])
    cuts = np.searchsorted(ends, np.arange(BLOCK_NNZ, int(ends[-1]) if ends.size else 0, BLOCK_NNZ), side="right")
    return [part for part in np.split(rows, np.unique(cuts)) if part.size]


def _transpose(
    indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, rows: np.ndarray, width: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The CSR of the transpose of ``rows`` of a CSR matrix with ``width`` columns, its indices sorted.

    Blocks of rows are transposed one at a time and each lands in its place in arrays of the final
    size: the working set is a block, not a second copy of the input.
    """
    from scipy import sparse

    matrix = sparse.csr_matrix((data, indices, indptr), shape=(indptr.size - 1, width))
    blocks = _row_blocks(indptr, rows)
    counts = np.zeros(width, dtype=np.int64)
    for block in blocks:
        counts += np.bincount(matrix[block].indices, minlength=width)
    out_indptr = np.zeros(width + 1, dtype=np.int64)
    np.cumsum(counts, out=out_indptr[1:])
    out_indices = _memory.empty(int(out_indptr[-1]), np.int32)
    out_data = _memory.empty(int(out_indptr[-1]), data.dtype)
    free = out_indptr[:-1].copy()  # where each output row's next value goes
    done = 0  # output columns so far: the rows of the blocks before
    for block in blocks:
        part = matrix[block].tocsc()
        counts = np.diff(part.indptr)
        dest = np.repeat(free - part.indptr[:-1], counts) + np.arange(part.nnz)
        out_indices[dest] = part.indices + done
        out_data[dest] = part.data
        free += counts
        done += block.size
    return out_indptr, out_indices, out_data


def _select(
    indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, columns: np.ndarray, width: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Columns ``columns`` (increasing) of a CSR matrix with ``width`` columns, renumbered from 0."""
    if columns.size == width:
        return indptr, indices, data
    new = np.full(width, -1, dtype=np.int32)
    new[columns] = np.arange(columns.size, dtype=np.int32)
    kept_indices, kept_data = _memory.Arena(np.int32), _memory.Arena(data.dtype)
    out_indptr = np.full(indptr.size, -1, dtype=np.int64)
    total = 0
    for start in range(0, indices.size, BLOCK_NNZ):
        renumbered = new[indices[start : start + BLOCK_NNZ]]
        mask = renumbered >= 0
        kept_indices.append(renumbered[mask])
        kept_data.append(data[start : start + BLOCK_NNZ][mask])
        running = np.cumsum(mask)  # values kept up to each position of the block
        first, last = np.searchsorted(indptr, [start, start + mask.size])
        offsets = indptr[first:last] - start  # rows starting inside the block
        out_indptr[first:last] = total + np.where(offsets > 0, running[np.maximum(offsets - 1, 0)], 0)
        total += int(running[-1])
    out_indptr[indptr >= indices.size] = total
    return out_indptr, kept_indices.take(), kept_data.take()
