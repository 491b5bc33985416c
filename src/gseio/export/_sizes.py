"""How many bytes the outputs will take, computed before any is written.

``gseio build`` compares this with the free space of the output file system, so that a
build that cannot fit fails at once with a clear message instead of a full disk half-way
through a file. The numbers are upper bounds with a small margin: the Matrix Market body
is counted digit by digit for integer values (24 characters, the longest float64 written
exactly, for real ones); the ``.h5ad`` is its arrays' bytes plus what HDF5 adds per
string and per element.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import sparse

from .template import EXACT_INTEGER, SPIKE_IN_PREFIX, _row_blocks

if TYPE_CHECKING:
    from anndata import AnnData

#: The longest float64 Matrix Market text written exactly, e.g. ``-2.2250738585072014E-308``.
REAL_CHARS = 24
#: What HDF5 may add around each element (object header, attributes) and each variable-length string.
ELEMENT_BYTES = 2048
STRING_BYTES = 48
_POW10 = 10 ** np.arange(1, 19, dtype=np.int64)


def _digits(values: np.ndarray) -> np.ndarray:
    """Decimal digits of non-negative integers (exact: no logarithms)."""
    return np.searchsorted(_POW10, values, side="right") + 1


def mtx_bytes(adata: AnnData, layer: str | None = None, columns: np.ndarray | None = None) -> int:
    """An upper bound of the size of the Matrix Market file the template writer makes of ``X`` (or a layer)."""
    size = 128 + 3 * 20  # banner, comment, size line
    integral, value_chars, nnz = True, 0, 0
    for start, block in _row_blocks(adata, layer, columns):
        rows = _digits(np.arange(start + 1, start + block.shape[0] + 1, dtype=np.int64))
        size += int(np.dot(np.diff(block.indptr).astype(np.int64), rows))
        size += int(_digits(block.indices.astype(np.int64) + 1).sum()) + 3 * block.nnz  # two blanks, a newline
        nnz += block.nnz
        data = block.data
        if integral and data.size:
            exact = data.dtype.kind in "iub" or (
                np.all(np.abs(data) <= EXACT_INTEGER) and np.all(np.floor(data) == data)
            )
            if exact:
                value_chars += int(_digits(np.abs(data).astype(np.int64)).sum()) + int(np.count_nonzero(data < 0))
            integral = bool(exact)
    return size + (value_chars if integral else REAL_CHARS * nnz)


def _text_bytes(values: Any) -> int:
    return sum(len(str(v).encode("utf-8", "surrogatepass")) for v in values)


def template_bytes(adata: AnnData, *, tpm: bool = False, tpm_layer: str = "tpm") -> int:
    """An upper bound of the bytes :func:`~gseio.export.template.write_template` writes."""
    cells, genes = _text_bytes(adata.obs_names), _text_bytes(adata.var_names)
    size = mtx_bytes(adata) + cells + genes + 2 * (adata.n_obs + adata.n_vars) + 64
    # cellAnnotation.tsv: cellID, sampleID and twelve "notAvailable", tab-separated
    samples = _text_bytes(adata.obs["sample"].astype(str)) if "sample" in adata.obs else 12 * adata.n_obs
    size += cells + samples + adata.n_obs * (12 * 12 + 14) + 256
    if tpm:
        keep = np.asarray(~adata.var_names.str.startswith(SPIKE_IN_PREFIX))
        size += 128 + 3 * 20 + _real_mtx_bytes(adata, tpm_layer, keep)
        size += 4 * genes + 64 * adata.n_vars + 256  # geneAnnotation.tsv: four name-like columns
    return size


def _real_mtx_bytes(adata: AnnData, layer: str, keep: np.ndarray) -> int:
    """Like :func:`mtx_bytes` for a matrix always written ``real`` (the TPM part)."""
    size = 0
    for start, block in _row_blocks(adata, layer, keep):
        rows = _digits(np.arange(start + 1, start + block.shape[0] + 1, dtype=np.int64))
        size += int(np.dot(np.diff(block.indptr).astype(np.int64), rows))
        size += int(_digits(block.indices.astype(np.int64) + 1).sum()) + (3 + REAL_CHARS) * block.nnz
    return size


def _element_bytes(value: Any) -> int:
    """An upper bound of what anndata's writer stores in HDF5 for one element (recursively)."""
    import pandas as pd

    if value is None or isinstance(value, bool | int | float | np.generic):
        return ELEMENT_BYTES
    if isinstance(value, str | bytes):
        return ELEMENT_BYTES + len(value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value)
    if sparse.issparse(value):
        return 3 * ELEMENT_BYTES + value.data.nbytes + value.indices.nbytes + value.indptr.nbytes
    if isinstance(value, pd.DataFrame):
        columns = sum(_element_bytes(value[c]) for c in value.columns)
        return ELEMENT_BYTES + columns + _element_bytes(value.index.to_numpy())
    if isinstance(value, pd.Series | pd.Index):
        if isinstance(value.dtype, pd.CategoricalDtype):
            return (
                2 * ELEMENT_BYTES
                + value.cat.codes.to_numpy().nbytes
                + _element_bytes(value.cat.categories.to_numpy())
            )
        return _element_bytes(value.to_numpy())
    if isinstance(value, Mapping):
        return ELEMENT_BYTES + sum(ELEMENT_BYTES + _element_bytes(v) for v in value.values())
    if isinstance(value, list | tuple):
        value = np.asarray(value, dtype=object) if value else np.zeros(0)
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "OUS":
            return ELEMENT_BYTES + value.size * STRING_BYTES + _text_bytes(value.ravel())
        return ELEMENT_BYTES + value.nbytes
    return ELEMENT_BYTES + 1024  # something anndata writes small (or refuses)


def h5ad_bytes(adata: AnnData) -> int:
    """An upper bound of the size of ``adata`` written as an ``.h5ad`` (in memory, uncompressed)."""
    size = 1 << 16  # the superblock, root group, attributes
    size += _element_bytes(adata.X)
    size += _element_bytes(adata.obs) + _element_bytes(adata.var)  # each with its index (the names)
    for mapping in (adata.layers, adata.obsm, adata.varm, adata.obsp, adata.varp):
        size += _element_bytes({k: mapping[k] for k in mapping})
    size += _element_bytes(dict(adata.uns))
    if adata.raw is not None:
        size += _element_bytes(adata.raw.X) + _element_bytes(adata.raw.var)
    return size
