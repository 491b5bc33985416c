"""AnnData ``.h5ad`` files (e.g. ``htseq-count --counts-output-format h5ad``, processed GEO uploads).

Read with h5py, not anndata, so that only what gseio needs is loaded: ``X`` (dense, or a
``csr_matrix``/``csc_matrix`` group), the ``obs`` index (cell ids) and the ``var`` index
(gene names) with its string and number columns as ``var`` annotations (categorical
columns decoded). Old files (anndata < 0.7) whose ``obs``/``var`` are compound datasets
are read too.

Which matrix: ``X`` when its values are counts (integers). When ``X`` holds non-integer
values (log-normalised, scaled) and the file also holds ``layers/counts`` or ``raw/X``
with integer values, that matrix is read instead (with ``raw/var``'s genes for
``raw/X``) and a note says so. Otherwise ``X`` is read as it is, marked
``values="normalized"`` when ``uns/log1p`` exists (scanpy's mark of log-normalised data);
negative values are refused (scaled data is not expression).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from .._options import DType, DuplicateGenes
from .._piece import Piece
from .._registry import FormatSpec, register_format
from .._source import Source
from .._unit import ReadOptions, Unit
from ..errors import CorruptFileError, FormatError
from . import _hdf5
from ._hdf5 import H5PY_ERRORS
from .loom import check_values, dense_blocks_to_csr, is_hdf5, is_string, open_hdf5, piece_from_csr, strings

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["read_h5ad_file", "read_unit", "sniff"]

#: Stored values inspected to tell counts from normalised values.
SAMPLE_VALUES = 100_000


def _encoding(node: Any) -> str:
    value = node.attrs.get("encoding-type", node.attrs.get("h5sparse_format", ""))
    value = value.decode() if isinstance(value, bytes) else str(value)
    return {"csr": "csr_matrix", "csc": "csc_matrix"}.get(value, value)


def sniff(head: bytes, source: Source) -> float:
    """1.0 for an HDF5 file with ``/X``, ``/obs`` and ``/var`` (an AnnData layout)."""
    if not is_hdf5(head):
        return 0.0
    try:
        with open_hdf5(source) as f:
            ok = all(k in f for k in ("X", "obs", "var"))
            ok = ok and (_encoding(f["obs"]) == "dataframe" or not hasattr(f["obs"], "keys"))
    except Exception:  # not readable as HDF5: another sniffer's business
        return 0.0
    return 1.0 if ok else 0.0


def _column(group: Any, key: str) -> np.ndarray | None:
    node = group[key]
    if hasattr(node, "keys"):  # categorical: codes + categories
        if _encoding(node) != "categorical" or "codes" not in node:
            return None
        categories = strings(node["categories"])
        codes = node["codes"][()]
        out = np.array([categories[c] if c >= 0 else "" for c in codes], dtype=object)
        return out
    if node.ndim != 1:
        return None
    if is_string(node):
        return strings(node)
    if node.dtype.kind in "iuf":
        return np.asarray(node[()], dtype=np.float64)
    return None


def _frame(node: Any, path: Source) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Index and simple columns of an ``obs``/``var`` dataframe (group, or legacy compound dataset)."""
    if not hasattr(node, "keys"):  # anndata < 0.7: a compound dataset with an "index" field
        table = node[()]
        names = table.dtype.names or ()
        if "index" not in names:
            raise FormatError(f"{node.name} has no 'index' field", path=path)
        index = np.array([v.decode() if isinstance(v, bytes) else str(v) for v in table["index"]], dtype=object)
        columns = {
            n: np.asarray(table[n], dtype=np.float64)
            for n in names
            if n != "index" and table[n].dtype.kind in "iuf"
        }
        return index, columns
    index_key = node.attrs.get("_index", "_index")
    index_key = index_key.decode() if isinstance(index_key, bytes) else str(index_key)
    if index_key not in node:
        raise FormatError(f"{node.name} has no index dataset {index_key!r}", path=path)
    columns = {}
    for key in node:
        if key != index_key and key != "__categories" and (values := _column(node, key)) is not None:
            columns[key] = values
    return strings(node[index_key]), columns


def _value_sample(node: Any) -> np.ndarray:
    if hasattr(node, "keys"):
        return np.asarray(node["data"][:SAMPLE_VALUES], dtype=np.float64)
    rows = max(1, SAMPLE_VALUES // max(node.shape[1], 1))
    return np.asarray(node[:rows], dtype=np.float64).ravel()


def _is_integer(values: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(values)) and np.all(values >= 0) and np.all(np.floor(values) == values))


def _to_csr(node: Any, shape: tuple[int, int], path: Source) -> Any:
    from scipy import sparse

    if not hasattr(node, "keys"):
        return dense_blocks_to_csr(node, cells_on_rows=True, path=path)
    kind = _encoding(node)
    arrays = (np.asarray(node["data"][()], dtype=np.float64), node["indices"][()], node["indptr"][()])
    check_values(arrays[0], path)
    if kind in ("csr_matrix", "csc_matrix"):
        matrix = (sparse.csr_matrix if kind == "csr_matrix" else sparse.csc_matrix)(arrays, shape=shape)
        matrix.check_format(full_check=True)  # indices inside the shape, indptr in order: else a damaged file
        return matrix.tocsr()
    raise FormatError(
        f"{node.name} is a {kind or 'unknown'} group, not a CSR/CSC matrix or a dense array", path=path
    )


def _choose_matrix(f: Any) -> tuple[str, str, str]:
    """Which matrix to read (its path, the var group to use) and why."""
    if _is_integer(_value_sample(f["X"])):
        return "X", "var", "X read: its values are counts (integers)"
    for candidate, var in (("layers/counts", "var"), ("raw/X", "raw/var")):
        if candidate in f and var in f and _is_integer(_value_sample(f[candidate])):
            return candidate, var, f"{candidate} read: X holds non-integer (normalised) values, {candidate} counts"
    return "X", "var", "X read: it holds non-integer values and the file has no integer counts layer"


def read_unit(unit: Unit, options: ReadOptions) -> list[Piece]:
    """Read one h5ad file into a piece (cells x genes, as stored)."""
    source = unit.main
    try:
        f = open_hdf5(source)
    except H5PY_ERRORS as e:
        raise CorruptFileError(f"cannot be opened as HDF5: {e}", path=source) from e
    with _hdf5.reading(source), f:  # a damaged file: CorruptFileError
        if not all(k in f for k in ("X", "obs", "var")):
            raise FormatError("not an h5ad file: /X, /obs and /var are required", path=source)
        matrix_key, var_key, why = _choose_matrix(f)
        cells, _ = _frame(f["obs"], source)
        genes, var_columns = _frame(f[var_key], source)
        node = f[matrix_key]
        shape = (len(cells), len(genes))
        stored = tuple(
            int(x)
            for x in node.attrs.get("shape", node.attrs.get("h5sparse_shape", getattr(node, "shape", shape)))
        )
        if stored != shape:
            raise FormatError(
                f"{matrix_key} is {stored[0]} x {stored[1]}; obs has {shape[0]} cells, {var_key} {shape[1]} genes",
                path=source,
            )
        csr = _to_csr(node, shape, source)
        normalised = matrix_key == "X" and "uns" in f and "log1p" in f["uns"]
    notes = {"orientation": "cells x genes: the AnnData layout", "matrix": why}
    values = "normalized" if normalised else "counts"
    piece = piece_from_csr(
        csr, cells=[str(c) for c in cells], genes=genes, annotations=var_columns, policy=options.duplicate_genes,
        path=source, values=values, notes=notes, cells_from="the /obs index", genes_from=f"the /{var_key} index",
    )  # fmt: skip
    return [piece]


def read_h5ad_file(
    path: str | os.PathLike[str], *, duplicate_genes: DuplicateGenes = "sum", dtype: DType = "auto"
) -> AnnData:
    """Read an ``.h5ad`` file's counts into gseio's layout (see the module notes for which matrix).

    Parameters
    ----------
    path
        The ``.h5ad`` file.
    duplicate_genes
        A repeated gene name: ``"sum"`` (default), keep the ``"first"``, or ``"error"``.
    dtype
        ``"auto"``, ``"float32"`` or ``"float64"``; see :func:`gseio.read_gse_dir`.

    Returns
    -------
    AnnData, cells x genes, ``X`` CSR without stored zeros; ``var`` holds the file's
    string and number ``var`` columns; ``uns["gseio"]["notes"]`` says which matrix was read.

    Raises
    ------
    ~gseio.errors.InputError
        Not an AnnData file, shapes that disagree, or a NaN, infinite or negative value.
    """
    from ..assemble import read

    return read(path, format="h5ad", duplicate_genes=duplicate_genes, dtype=dtype)


register_format(FormatSpec(name="h5ad", description="AnnData .h5ad file (HDF5: X, obs, var)", sniff=sniff,
                           read_unit=read_unit))  # fmt: skip
