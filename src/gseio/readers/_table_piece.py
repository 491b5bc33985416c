"""A parsed wide table as a :class:`~gseio._piece.Piece`: CSR rows of its cells over its genes.

htseq-count's counters (``__no_feature``...) are kept apart as ``obs`` columns, the duplicate-gene
policy is applied, and a cell id given twice in one table is refused.
"""

from __future__ import annotations

import numpy as np

from .._piece import GeneBlock, Piece, check_unique_cells
from ..errors import FormatError
from . import _names
from ._table import HTSEQ_SPECIAL_PREFIX, Table

__all__ = ["build_piece", "gene_rows"]


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
        dups = pd.unique(names[genes][duplicated])
        raise FormatError(
            f"{n_dup} rows repeat a gene name ({', '.join(map(str, dups[:5]))}"
            f"{', ...' if len(dups) > 5 else ''}); pass duplicate_genes='sum' or 'first'",
            path=path,
        )
    if n_dup and policy == "first":
        genes = genes[~duplicated]
    return genes, special, n_dup


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
    from scipy import sparse

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
    if genes_by_cells:
        annotations = {k: v[keep] for k, v in table.annotations.items()}
        indices, data, counts = [], [], []
        for column in table.values:  # each value column is one cell: one CSR row
            row = column[keep]
            nonzero = np.flatnonzero(row)
            indices.append(nonzero.astype(np.int32))
            data.append(row[nonzero])
            counts.append(nonzero.size)
        obs = {
            name: np.array([c[s] for c in table.values]) for name, s in zip(special_names, special, strict=True)
        }
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        csr_indices = np.concatenate(indices) if indices else np.zeros(0, np.int32)
        csr_data = np.concatenate(data) if data else np.zeros(0)
    else:
        if table.annotations:
            notes["annotations"] = f"per-cell text columns ignored: {', '.join(table.annotations)}"
        rows, cols, data = [], [], []
        for local, j in enumerate(keep):  # each value column is one gene: collect its non-zero cells
            nonzero = np.flatnonzero(table.values[j])
            rows.append(nonzero)
            cols.append(np.full(nonzero.size, local, dtype=np.int64))
            data.append(table.values[j][nonzero])
        obs = {name: table.values[s] for name, s in zip(special_names, special, strict=True)}
        matrix = sparse.csr_matrix(
            (np.concatenate(data or [np.zeros(0)]), (np.concatenate(rows or [np.zeros(0, np.int64)]),
             np.concatenate(cols or [np.zeros(0, np.int64)]))),
            shape=(len(cells), len(keep)),
        )  # fmt: skip
        matrix.sort_indices()
        indptr, csr_indices, csr_data = (
            matrix.indptr.astype(np.int64),
            matrix.indices.astype(np.int32),
            matrix.data,
        )
    block = GeneBlock.from_names(gene_names[keep], n_duplicates=n_dup, annotations=annotations)
    return Piece(
        source=str(path),
        cells=cells,
        genes=block,
        indptr=indptr,
        indices=csr_indices,
        data=csr_data.astype(np.float64, copy=False),
        obs=obs,
        values=values,
        notes=notes,
    )
