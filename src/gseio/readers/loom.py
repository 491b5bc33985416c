"""Loom files (loompy layout, e.g. ``htseq-count --counts-output-format loom``, velocyto).

An HDF5 file with ``/matrix`` (genes x cells, dense and chunked), ``/row_attrs`` (one
dataset per gene attribute) and ``/col_attrs`` (one per cell attribute). Gene names come
from ``row_attrs/Gene``, else ``Accession``, else the first string attribute (htseq
writes ``id``); cell ids from ``col_attrs/CellID``, else the first string attribute.
Other one-dimensional gene attributes (strings, numbers) go to ``var``. The matrix is
read a block of cells at a time, so no dense copy of the whole matrix is made.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from .._options import DType, DuplicateGenes
from .._piece import GeneBlock, Piece
from .._registry import FormatSpec, register_format
from .._source import Source
from .._unit import ReadOptions, Unit
from ..errors import CorruptFileError, FormatError, InvalidValueError
from . import _hdf5, _names
from ._hdf5 import H5PY_ERRORS
from ._table import HTSEQ_SPECIAL_PREFIX
from ._table_piece import gene_rows

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["HDF5_MAGIC", "open_hdf5", "piece_from_csr", "read_loom", "read_unit", "sniff", "strings"]

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
#: Values read at once from a dense matrix (~256 MB of float64).
BLOCK_VALUES = 1 << 25


def open_hdf5(source: Source) -> Any:
    """Open an HDF5 file (on disk, in a tar, or compressed) with h5py, read-only."""
    from .. import _open

    return _open.open_hdf5(source)


def is_hdf5(head: bytes) -> bool:
    """Whether ``head`` starts with the HDF5 signature."""
    return head.startswith(HDF5_MAGIC)


def strings(dataset: Any) -> np.ndarray:
    """A 1-D dataset of strings (fixed or variable length, bytes or str) as an object array of str."""
    values = dataset[()]
    if dataset.dtype.kind in "SO":
        return np.array(
            [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values], dtype=object
        )
    return np.asarray(values).astype(str).astype(object)


def is_string(dataset: Any) -> bool:
    """Whether ``dataset`` is a 1-D string dataset."""
    import h5py

    kind = dataset.dtype.kind
    return dataset.ndim == 1 and (
        kind == "S" or (kind == "O" and h5py.check_string_dtype(dataset.dtype) is not None)
    )


def sniff(head: bytes, source: Source) -> float:
    """1.0 for an HDF5 file holding ``/matrix``, ``/row_attrs`` and ``/col_attrs``."""
    if not is_hdf5(head):
        return 0.0
    try:
        with open_hdf5(source) as f:
            ok = all(k in f for k in ("matrix", "row_attrs", "col_attrs")) and getattr(f["matrix"], "ndim", 0) == 2
    except Exception:  # not readable as HDF5: another sniffer's business
        return 0.0
    return 1.0 if ok else 0.0


def _name_attribute(
    group: Any, preferred: tuple[str, ...], n: int, what: str, path: Source
) -> tuple[str, np.ndarray]:
    candidates = [k for k in preferred if k in group] + sorted(k for k in group if is_string(group[k]))
    for key in candidates:
        if group[key].shape == (n,) and is_string(group[key]):
            return key, strings(group[key])
    raise FormatError(f"no string attribute of length {n} names the {what}", path=path)


def dense_blocks_to_csr(matrix: Any, *, cells_on_rows: bool, path: Source) -> Any:
    """Read a dense 2-D dataset a block at a time into a cells x genes CSR matrix, checking values."""
    from scipy import sparse

    n_cells = matrix.shape[0] if cells_on_rows else matrix.shape[1]
    n_genes = matrix.shape[1] if cells_on_rows else matrix.shape[0]
    step = max(1, BLOCK_VALUES // max(n_genes, 1))
    blocks = []
    for start in range(0, n_cells, step):
        stop = min(n_cells, start + step)
        block = np.asarray(matrix[start:stop, :] if cells_on_rows else matrix[:, start:stop].T, dtype=np.float64)
        check_values(block, path, first_cell=start)
        blocks.append(sparse.csr_matrix(block))
    if not blocks:
        return sparse.csr_matrix((0, n_genes))
    return sparse.vstack(blocks, format="csr")


def check_values(values: np.ndarray, path: Source, *, first_cell: int = 0) -> None:
    """Raise :class:`InvalidValueError` for NaN, infinite or negative values."""
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        where = np.argwhere(bad)[0] if values.ndim == 2 else None
        at = f" (cell {first_cell + where[0] + 1}, gene {where[1] + 1})" if where is not None else ""
        raise InvalidValueError(
            f"the matrix holds a NaN, infinite or negative value{at}: counts must be finite and >= 0", path=path
        )


def piece_from_csr(
    matrix: object,
    *,
    cells: list[str],
    genes: np.ndarray,
    annotations: dict[str, np.ndarray],
    policy: str,
    path: object,
    values: str = "counts",
    notes: dict[str, str] | None = None,
    cells_from: str = "the cell ids",
    genes_from: str = "the gene names",
) -> Piece:
    """A piece from a cells x genes CSR matrix (HDF5 formats): counters to ``obs``, duplicate policy.

    Names are checked and stripped (:mod:`._names`); ``cells_from`` and ``genes_from`` name the
    datasets they come from, for the messages.
    """
    from scipy import sparse

    notes = dict(notes or {})
    cleaned = _names.clean(cells, what="cell id", path=path, where=lambda k: f"entry {k + 1} of {cells_from}")
    cleaned.into(notes, "cell_names")
    cells = list(cleaned.names)
    cleaned = _names.clean(genes, what="gene name", path=path, where=lambda k: f"entry {k + 1} of {genes_from}")
    cleaned.into(notes, "gene_names")
    genes = cleaned.names
    csr = sparse.csr_matrix(matrix)
    keep, special, n_dup = gene_rows(genes, policy, path)
    obs = {
        "htseq_" + str(genes[s])[len(HTSEQ_SPECIAL_PREFIX) :]: csr[:, int(s)].toarray().ravel().astype(np.float64)
        for s in special
    }
    if keep.size != len(genes):
        csr = csr[:, keep]
    csr.eliminate_zeros()
    csr.sort_indices()
    block = GeneBlock.from_names(
        genes[keep], n_duplicates=n_dup, annotations={k: v[keep] for k, v in annotations.items()}
    )
    return Piece(
        source=str(path),
        cells=cells,
        genes=block,
        indptr=csr.indptr.astype(np.int64),
        indices=csr.indices.astype(np.int32),
        data=csr.data.astype(np.float64),
        obs=obs,
        values=values,
        notes=notes,
    )


def read_unit(unit: Unit, options: ReadOptions) -> list[Piece]:
    """Read one loom file into a piece (cells x genes)."""
    source = unit.main
    try:
        f = open_hdf5(source)
    except H5PY_ERRORS as e:
        raise CorruptFileError(f"cannot be opened as HDF5: {e}", path=source) from e
    with _hdf5.reading(source), f:  # a damaged file: CorruptFileError
        if not all(k in f for k in ("matrix", "row_attrs", "col_attrs")):
            raise FormatError("not a loom file: /matrix, /row_attrs and /col_attrs are required", path=source)
        matrix = f["matrix"]
        n_genes, n_cells = matrix.shape
        gene_key, genes = _name_attribute(
            f["row_attrs"], ("Gene", "Accession", "gene", "gene_id", "id"), n_genes, "genes", source
        )
        cell_key, cells = _name_attribute(
            f["col_attrs"], ("CellID", "cell_id", "obs_names", "_index"), n_cells, "cells", source
        )
        annotations = {}
        for key, dataset in f["row_attrs"].items():
            if key != gene_key and dataset.shape == (n_genes,):
                name = "gene_ids" if key == "Accession" else "gene_symbols" if key == "Gene" else key
                annotations[name] = strings(dataset) if is_string(dataset) else np.asarray(dataset[()])
        csr = dense_blocks_to_csr(matrix, cells_on_rows=False, path=source)
    notes = {"orientation": f"genes x cells: the loom layout (genes from row_attrs/{gene_key}, cells from "
             f"col_attrs/{cell_key})"}  # fmt: skip
    return [
        piece_from_csr(csr, cells=[str(c) for c in cells], genes=genes, annotations=annotations,
                       policy=options.duplicate_genes, path=source, notes=notes,
                       cells_from=f"/col_attrs/{cell_key}", genes_from=f"/row_attrs/{gene_key}")
    ]  # fmt: skip


def read_loom(
    path: str | os.PathLike[str], *, duplicate_genes: DuplicateGenes = "sum", dtype: DType = "auto"
) -> AnnData:
    """Read a loom file into an AnnData.

    Parameters
    ----------
    path
        The ``.loom`` file.
    duplicate_genes
        A repeated gene name: ``"sum"`` (default), keep the ``"first"``, or ``"error"``.
    dtype
        ``"auto"``, ``"float32"`` or ``"float64"``; see :func:`gseio.read_gse_dir`.

    Returns
    -------
    AnnData, cells x genes, ``X`` CSR without stored zeros; ``var`` holds the other gene
    attributes; htseq-count's counters (``__no_feature``...) go to ``obs`` (``htseq_no_feature``...).

    Raises
    ------
    ~gseio.errors.InputError
        Not a loom file, no string attribute naming genes or cells, or a NaN, infinite or
        negative value.
    """
    from ..assemble import read

    return read(path, format="loom", duplicate_genes=duplicate_genes, dtype=dtype)


register_format(FormatSpec(name="loom", description="loom file (HDF5: matrix, row_attrs, col_attrs)", sniff=sniff,
                           read_unit=read_unit))  # fmt: skip
