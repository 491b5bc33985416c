"""The assembler: per-file pieces in, one cells x genes AnnData out (outer join on gene names).

Each distinct gene list (a :class:`~gseio._piece.GeneBlock`) is mapped once to global
gene positions through an integer array; the remapped CSR arrays of every piece are kept
and concatenated once, in :meth:`Assembler.finish`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import sparse

from . import _genes, _memory, _warn
from ._options import DType, GeneIds, GeneOrder
from ._piece import GeneBlock, Piece

if TYPE_CHECKING:
    from anndata import AnnData

    from ._backed import BackedWriter


class Assembler:
    """Collect pieces and build one CSR matrix with an outer join on gene names.

    Parameters
    ----------
    sink
        A :class:`~gseio._backed.BackedWriter`: rows are streamed to disk as they come
        (out-of-core) instead of being kept in memory; finish with :meth:`finish_backed`.
    gene_ids
        ``"auto"``: Ensembl IDs join without their version suffix (see :mod:`gseio._genes`);
        ``"exact"``: labels join as written.
    gene_table
        A gene table (:func:`gseio.genes.gene_table`): symbol-labelled gene lists are indexed
        by the table's Ensembl IDs, and date-like symbols repaired where unambiguous.
    """

    def __init__(
        self,
        sink: BackedWriter | None = None,
        *,
        gene_ids: GeneIds = "auto",
        gene_table: pd.DataFrame | None = None,
    ) -> None:
        self._sink = sink
        self._gene_ids = gene_ids
        self._to_id = _genes.symbol_to_id(gene_table) if gene_table is not None else None
        self._symbols = set(self._to_id) if self._to_id is not None else set()
        self._mapping = {
            "n_symbols_mapped_to_ids": 0,
            "n_symbols_not_in_gene_table": 0,
            "n_excel_dates_repaired": 0,
        }
        self._kinds: dict[str, tuple[str, int, str]] = {}  # gene list key -> (kind, genes, first unit)
        self._list_index: dict[str, int] = {}  # gene list key -> its number (obs["gene_list"])
        self._versions_stripped: set[int] = set()
        self._gene_pos: dict[str, int] = {}
        self._maps: dict[str, np.ndarray] = {}
        self._identity: dict[str, bool] = {}
        self._indptr: list[np.ndarray] = [np.zeros(1, dtype=np.int64)]
        # the pieces' arrays are copied in as they arrive (while the workers parse the next ones)
        self._indices = _memory.Arena(np.int32)
        self._data: _memory.Arena | None = None
        self._nnz = 0
        self._cells: list[str] = []
        self._const: dict[str, list[tuple[int, Any]]] = {}
        self._extra: dict[str, list[tuple[int, np.ndarray]]] = {}
        self._var: dict[str, dict[int, Any]] = {}
        self.n_duplicate_genes = 0

    @property
    def n_cells(self) -> int:
        """Cells added so far."""
        return len(self._cells)

    @property
    def n_genes(self) -> int:
        """Distinct genes seen so far."""
        return len(self._gene_pos)

    def _global_positions(self, block: GeneBlock, unit: str) -> np.ndarray:
        positions = self._maps.get(block.key)
        if positions is None:
            names, annotations = block.names, dict(block.annotations)
            kind = _genes.label_kind(names)
            if self._to_id is not None and self._gene_ids == "auto" and kind == "symbols":
                names, annotations = self._symbols_to_ids(names, annotations)
                kind = _genes.label_kind(names)
            if self._gene_ids == "auto":  # a series labelled by ID in some files, by symbol in others
                self._kinds[block.key] = (kind, len(names), unit)
                _genes.check_kinds(self._kinds, where=unit)
            keys = _genes.join_keys(names, self._gene_ids)
            pos = self._gene_pos
            positions = np.fromiter((pos.setdefault(g, len(pos)) for g in keys), dtype=np.int64, count=len(keys))
            if len(pos) < 2**31:  # gathers through an int32 map give int32 indices in one pass
                positions = positions.astype(np.int32)
            self._maps[block.key] = positions
            # the usual case, one gene list for the series: its positions are its own indices
            self._identity[block.key] = bool(np.array_equal(positions, np.arange(positions.size)))
            self._list_index[block.key] = len(self._list_index)
            if keys is not names:  # versions were stripped: keep the versioned IDs
                versioned = np.array([n if n != k else None for n, k in zip(names, keys, strict=True)])
                annotations.setdefault("gene_id_version", versioned)
                self._versions_stripped.update(p for p, v in zip(positions.tolist(), versioned, strict=True) if v)
            for column, values in annotations.items():  # the first known value of a gene wins
                known = self._var.setdefault(column, {})
                for position, value in zip(positions.tolist(), values.tolist(), strict=True):
                    if position not in known and not _missing(value):
                        known[position] = value
        return positions

    def _symbols_to_ids(
        self, names: np.ndarray, annotations: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Index a symbol-labelled gene list by the gene table's IDs (symbols kept in var)."""
        assert self._to_id is not None
        symbols = np.array(names, dtype=object)
        for i, name in enumerate(symbols):
            if name not in self._to_id and (repaired := _genes.repair_date(name, self._symbols)) is not None:
                symbols[i] = repaired
                self._mapping["n_excel_dates_repaired"] += 1
        ids = np.array([self._to_id.get(name, name) for name in symbols], dtype=object)
        mapped = sum(1 for name in symbols if name in self._to_id)
        self._mapping["n_symbols_mapped_to_ids"] += mapped
        self._mapping["n_symbols_not_in_gene_table"] += len(symbols) - mapped
        annotations.setdefault("gene_symbols", symbols)
        return ids, annotations

    def add(self, piece: Piece, *, consume: bool = False, **columns: Any) -> None:
        """Append a piece's cells; ``columns`` are obs values shared by all its cells.

        With ``consume``, the piece is not used again: its large arrays are given back to
        the OS while they are copied (see :meth:`gseio._memory.Arena.append`).
        """
        start = self.n_cells
        positions = self._global_positions(piece.genes, str(columns.get("source_file", piece.source)))
        columns = {**columns, "gene_list": self._list_index[piece.genes.key]}
        if self._identity[piece.genes.key] and piece.indices.dtype == np.int32:
            indices = piece.indices
        else:
            indices = positions[piece.indices].astype(np.int32, copy=False)
        if self._sink is not None:
            # rows go to disk now, so they must be final: genes sorted, repeated genes summed
            rows = sparse.csr_matrix(
                (piece.data, indices, piece.indptr), shape=(piece.n_cells, len(self._gene_pos))
            )
            before = rows.nnz
            rows.sum_duplicates()
            if rows.nnz < before:
                _check_sums(rows, lambda row: piece.source)
            self._sink.append(rows.indptr.astype(np.int64), rows.indices, rows.data)
        else:
            self._indices.append(indices, consume=consume and indices is piece.indices)
            del indices
            if self._data is None:
                self._data = _memory.Arena(np.float32 if piece.data.dtype == np.float32 else np.float64)
            elif piece.data.dtype != np.float32:
                self._data.widen(np.float64)  # once: float32 would no longer hold every value exactly
            self._data.append(piece.data, consume=consume)
            self._indptr.append(piece.indptr[1:] + self._nnz)
        self._nnz += piece.nnz
        self._cells.extend(piece.cells)
        self.n_duplicate_genes += piece.genes.n_duplicates
        for name, value in columns.items():
            self._const.setdefault(name, []).append((start, value))
        for name, values in piece.obs.items():
            self._extra.setdefault(name, []).append((start, values))

    def _obs(self) -> pd.DataFrame:
        n = self.n_cells
        obs: dict[str, Any] = {}
        for name, runs in self._const.items():
            counts = np.diff([start for start, _ in runs] + [n])
            obs[name] = pd.Categorical(np.repeat(np.array([v for _, v in runs], dtype=object), counts))
        obs["cell"] = np.array(self._cells, dtype=object)
        for name, runs in self._extra.items():
            column = np.full(n, np.nan)
            for start, values in runs:
                column[start : start + len(values)] = values
            obs[name] = column
        frame = pd.DataFrame(obs)
        frame.index = _unique_obs_names(self._cells, frame.get("sample"))
        return frame

    def _gene_order(self, gene_order: GeneOrder) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Gene names in their final order, the permutation applied, and each old position's new one."""
        names = np.array(list(self._gene_pos), dtype=object)
        if gene_order == "first_seen":
            return names, None, None
        if gene_order != "sorted":
            raise ValueError(f"gene_order must be 'first_seen' or 'sorted', not {gene_order!r}")
        order = np.argsort(names.astype(str), kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        return names[order], order, rank

    def _var_frame(self, names: np.ndarray, order: np.ndarray | None) -> pd.DataFrame:
        var = pd.DataFrame(
            {column: _var_column(known, len(names), order) for column, known in self._var.items()},
            index=pd.Index(names.astype(str), name=None),
        )
        var["spike_in"] = _genes.spike_in(names)
        return var

    def _gene_lists(self, n_genes: int, rank: np.ndarray | None) -> np.ndarray:
        """``varm["gene_lists"]``: gene j was measured by the cells with ``obs["gene_list"] == k``."""
        present = np.zeros((n_genes, len(self._list_index)), dtype=bool)
        for key, k in self._list_index.items():
            positions = self._maps[key]
            present[positions if rank is None else rank[positions], k] = True
        return present

    def _source_of_row(self, row: int) -> Any:
        """The file cell ``row`` came from (as added with ``source_file=``)."""
        runs = self._const.get("source_file", [])
        starts = [start for start, _ in runs]
        k = int(np.searchsorted(starts, row, side="right")) - 1
        return runs[k][1] if k >= 0 else None

    def gene_report(self) -> dict[str, Any]:
        """The gene identity report of the genes added so far (for the provenance)."""
        names = np.array(list(self._gene_pos), dtype=object)
        return _genes.report(names, n_duplicate_rows=self.n_duplicate_genes, mapping=self._mapping,
                             n_versions_stripped=len(self._versions_stripped), policy=self._gene_ids)  # fmt: skip

    def finish(self, *, gene_order: GeneOrder = "first_seen", dtype: DType = "auto") -> AnnData:
        """Build the AnnData in memory: ``X`` CSR cells x genes, ``obs`` and ``var`` as collected."""
        import anndata as ad

        names, order, rank = self._gene_order(gene_order)
        indptr = np.concatenate(self._indptr)
        exact = self._data is None or self._data.dtype == np.float32
        data = self._data.take() if self._data is not None else np.empty(0, np.float32)
        indices = self._indices.take()
        if rank is not None:
            indices = rank[indices].astype(np.int32)
        if indptr[-1] <= np.iinfo(np.int32).max:
            indptr = indptr.astype(np.int32)
        data = data.astype(_choose_dtype(exact, dtype), copy=False)
        X = sparse.csr_matrix((data, indices, indptr), shape=(self.n_cells, len(names)))
        before = X.nnz
        X.sum_duplicates()  # sorts each row's genes; sums genes a file repeated
        if X.nnz < before:
            _check_sums(X, self._source_of_row)
        varm = {"gene_lists": self._gene_lists(len(names), rank)}
        return ad.AnnData(X=X, obs=self._obs(), var=self._var_frame(names, order), varm=varm)

    def finish_backed(
        self, *, gene_order: GeneOrder = "first_seen", uns: dict[str, Any] | Callable[[], dict[str, Any]]
    ) -> AnnData:
        """Complete the file the rows were streamed to and open it backed (read-only).

        ``uns`` may be a function, called once ``obs`` and ``var`` are made.
        """
        import anndata as ad

        if self._sink is None:
            raise RuntimeError("finish_backed() needs an Assembler made with a sink")
        names, order, rank = self._gene_order(gene_order)
        obs, var = self._obs(), self._var_frame(names, order)  # (their warnings go into the report)
        path = self._sink.finish(
            n_cols=len(names), obs=obs, var=var, uns=uns() if callable(uns) else uns, rank=rank,
            varm={"gene_lists": self._gene_lists(len(names), rank)},
        )  # fmt: skip
        return ad.read_h5ad(path, backed="r")


def _check_sums(X: sparse.csr_matrix, source_of_row: Callable[[int], Any]) -> None:
    """Raise when the counts of a gene repeated in one file sum past the largest float."""
    bad = np.flatnonzero(~np.isfinite(X.data))
    if bad.size:
        from .errors import InvalidValueError

        row = int(np.searchsorted(X.indptr, bad[0], side="right")) - 1
        raise InvalidValueError(
            f"the counts of a gene the file repeats (cell {row + 1}) sum beyond the largest float; "
            "they are not counts. Pass duplicate_genes='first' or 'error', or fix the file",
            path=source_of_row(row),
        )


def _missing(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, float) and np.isnan(value))


def _var_column(known: dict[int, Any], n: int, order: np.ndarray | None) -> Any:
    """A ``var`` column: float with NaN when every known value is a number, else categorical strings."""
    values = np.full(n, None, dtype=object)
    for position, value in known.items():
        values[position] = value
    if order is not None:
        values = values[order]
    if all(isinstance(v, int | float | np.number) and not isinstance(v, bool) for v in known.values()):
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    return pd.Categorical([None if v is None else str(v) for v in values])


def _choose_dtype(exact: bool, dtype: DType) -> type[np.floating]:
    if dtype == "float32":
        return np.float32
    if dtype == "float64":
        return np.float64
    if dtype != "auto":
        raise ValueError(f"dtype must be 'auto', 'float32' or 'float64', not {dtype!r}")
    return np.float32 if exact else np.float64


def _unique_obs_names(cells: Sequence[str], samples: Iterable[str] | None) -> pd.Index:
    names = pd.Index(cells, dtype=object)
    if names.is_unique or samples is None:
        return names if names.is_unique else _make_unique(names)
    prefixed = pd.Index(
        [c if c == s or c.startswith(f"{s}_") else f"{s}_{c}" for c, s in zip(cells, samples, strict=True)],
        dtype=object,
    )
    return prefixed if prefixed.is_unique else _make_unique(prefixed)


def _make_unique(names: pd.Index) -> pd.Index:
    from anndata.utils import make_index_unique

    n_dup = int(names.duplicated().sum())
    _warn.warn(
        f"{n_dup} cell names are repeated even with their sample prefixed; suffixes '-1', '-2', ... "
        "were appended (see obs['cell'] and obs['source_file'] for the originals)",
        stacklevel=4,
    )
    return make_index_unique(names)
