"""Transcripts per million from raw counts, sparse throughout, in memory or on disk.

The recipe is the curation platform's: drop ERCC spike-ins, divide counts by gene length
for full-length protocols only, give a gene without a known length the median of the
known lengths, scale every cell to sum to 1e6. The work goes in row blocks of about
:data:`BLOCK_NNZ` stored values, so temporaries stay small and a backed ``.h5ad`` is
converted without loading its matrix; both paths run the same block function on the same
blocks, so their results are identical to the bit.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from scipy import sparse

from ..errors import InvalidValueError, OutputError
from ._lengths import GeneLengthError, TPMError, _column_factors
from ._protocols import Protocol, resolve_protocol

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["BLOCK_NNZ", "GeneLengthError", "TPMError", "tpm"]

#: Stored values per row block (a block always holds whole rows).
BLOCK_NNZ = 1 << 22
SCALE = 1e6
MissingLength = Literal["median", "drop", "error"]


def tpm(
    adata: AnnData,
    *,
    protocol: str | Protocol,
    lengths: pd.Series | pd.DataFrame | None = None,
    length_column: str = "length",
    missing_length: MissingLength = "median",
    layer: str | None = "tpm",
    spike_in_prefix: str | tuple[str, ...] | None = "ERCC-",
    copy: bool = False,
) -> AnnData | None:
    """Transcripts per million from the raw counts in ``X``, as the curation platform computes them.

    For each cell, ``TPM[g] = 1e6 * w[g] / sum(w)`` where ``w[g] = counts[g] / length[g]``
    for full-length protocols and ``w[g] = counts[g]`` for UMI / 3' / 5' tag protocols; the
    sum runs over genes that are not spike-ins. Lengths are used in whatever unit they are
    given (bases or kilobases): scaling every cell to 1e6 cancels the unit.

    Parameters
    ----------
    adata
        Cells x genes, ``X`` the raw counts (sparse or dense; the result is CSR). May be
        backed (opened with ``anndata.read_h5ad(path, backed="r")``): see Notes.
    protocol
        The library preparation protocol, matched loosely (``"Smart-seq2"``,
        ``"SMARTseq2"``, ``"C1 Fluidigm"``, ``"10x"``, ``"10X chromium"``, ``"Drop-seq"``
        ...); see :data:`gseio.pp.PROTOCOLS`. ``"full-length"`` and ``"UMI"`` name the
        two kinds directly.
    lengths
        Gene lengths for full-length protocols: a Series indexed by gene, or a DataFrame
        with a ``length_column`` column (or the platform's ``Gene_ID``, ``Gene_name``,
        ``Gene_length`` table). Genes are looked up by ``var_names``, then by
        ``var["gene_symbols"]``, among the table's index, gene-id column and symbol column;
        Ensembl version suffixes (``.17``) are ignored on both sides. When several
        entries share a name the first is used. Default: ``var[length_column]``, which
        the featureCounts, RSEM, kallisto and salmon readers fill.
    length_column
        The column of ``var`` (or of a ``lengths`` DataFrame) holding lengths, e.g.
        ``"effective_length"`` for RSEM / kallisto / salmon effective lengths.
    missing_length
        Genes without a known (finite, positive) length: ``"median"`` gives them the
        median of the known lengths of the matrix's genes (the platform's rule);
        ``"drop"`` gives them TPM 0 and leaves them out of every cell's sum, so the other
        genes still sum to 1e6; ``"error"`` raises :class:`GeneLengthError` naming them.
    layer
        Where the result goes: ``layers[layer]``. ``None`` replaces ``X`` (in memory only;
        the raw counts are then gone unless kept elsewhere).
    spike_in_prefix
        Genes whose name starts with this (or any of these) are spike-ins: all zero in the
        result and left out of the sums, as the platform drops them. ``None``: no spike-ins.
    copy
        Return a new AnnData instead of changing ``adata`` (in memory only).

    Returns
    -------
    The new AnnData when ``copy=True``, else ``None``. Fills ``layers[layer]`` (CSR,
    float64, same shape as ``X``, no stored zeros) or ``X``, and ``uns["gseio_tpm"]``: the
    formula, the protocol as given and as resolved, ``length_normalised``,
    ``length_source`` (``"argument"``, ``"var['<column>']"`` or ``"none"``), a blake2b
    checksum of the lengths used, the missing-length policy and count, and how many
    spike-ins were excluded.

    Raises
    ------
    UnknownProtocolError
        ``protocol`` is not known (the message lists the known ones).
    GeneLengthError
        A full-length protocol without any gene length, or missing lengths with
        ``missing_length="error"``.
    InvalidValueError
        ``X`` holds a negative, NaN or infinite count.

    Notes
    -----
    A cell with no counts outside spike-ins (or dropped genes) stays all zero, never NaN.

    For a backed AnnData, ``X`` is streamed from its ``.h5ad`` in row blocks and the result
    is written into the same file as ``layers/<layer>`` (anndata's CSR encoding, so
    ``anndata.read_h5ad(path)`` and ``read_h5ad(path, backed="r")`` both read it), with
    ``uns/gseio_tpm``. The file must be writable: the function closes the object's file
    handle, writes with h5py, and reopens the object in its own mode, so
    ``adata.layers[layer]`` is then an on-disk sparse dataset. ``layer=None`` and
    ``copy=True`` are refused for backed data (copy the file first to keep the original).
    """
    resolved = resolve_protocol(protocol)
    if missing_length not in ("median", "drop", "error"):
        raise TPMError(f"missing_length must be 'median', 'drop' or 'error', not {missing_length!r}")
    if adata.isbacked and (layer is None or copy):
        raise TPMError(
            "a backed AnnData gets its TPM as a layer written into its own file: layer=None and copy=True "
            "are not supported; copy the .h5ad first to keep the original",
            path=adata.filename,
        )
    factor, provenance = _column_factors(adata, resolved, lengths, length_column, missing_length, spike_in_prefix)
    provenance.update(protocol=getattr(protocol, "name", protocol), layer="X" if layer is None else layer)
    weights = None if (factor == 1).all() else factor  # None: every gene weighs 1, skip the gather
    if adata.isbacked:
        _tpm_backed(adata, weights, layer, provenance)
        return None
    X = adata.X if sparse.issparse(adata.X) else sparse.csr_matrix(np.asarray(adata.X))
    result, n_zero = _tpm_csr(X if X.format == "csr" else X.tocsr(), weights)
    provenance["n_cells_all_zero"] = n_zero
    target = adata.copy() if copy else adata
    if layer is None:
        target.X = result
    else:
        target.layers[layer] = result
    target.uns["gseio_tpm"] = provenance
    return target if copy else None


def _row_blocks(indptr: np.ndarray) -> Iterator[tuple[int, int]]:
    """Row ranges ``[start, end)`` of whole rows holding about :data:`BLOCK_NNZ` stored values each."""
    n_rows = indptr.size - 1
    row = 0
    while row < n_rows:
        end = int(np.searchsorted(indptr, indptr[row] + BLOCK_NNZ, side="right")) - 1
        end = min(max(end, row + 1), n_rows)
        yield row, end
        row = end


def _tpm_block(
    data: np.ndarray,
    indices: np.ndarray,
    indptr: np.ndarray,
    factor: np.ndarray | None,
    out_data: np.ndarray,
    out_indices: np.ndarray,
) -> tuple[int, np.ndarray, int]:
    """TPM of whole rows (``indptr`` starts at 0) into the start of ``out_data`` / ``out_indices``.

    Returns the number of values written (zeros are left out), the rows' new indptr, and how
    many rows are all zero. The output arrays double as scratch space: no block-sized
    temporaries beyond one row-expanded scale, so in-memory and on-disk runs share this code.
    """
    n = data.size
    counts = np.diff(indptr)
    values = out_data[:n]
    if factor is None:
        values[...] = data
    else:
        np.take(factor, indices, out=values, mode="clip")  # "clip": "raise" would buffer a copy of out
        np.multiply(values, data, out=values)
    if n and values.min() < 0:
        raise InvalidValueError("X holds negative counts: TPM needs raw counts")
    sums = np.zeros(counts.size)
    stored = counts > 0
    if n:  # reduceat over non-empty rows only: an empty row would take its neighbour's value
        sums[stored] = np.add.reduceat(values, indptr[:-1][stored])
    if not np.isfinite(sums).all():
        raise InvalidValueError("X holds NaN or infinite counts: TPM needs raw counts")
    positive = sums > 0
    scale = np.zeros(counts.size)
    scale[positive] = SCALE / sums[positive]
    np.multiply(values, np.repeat(scale, counts), out=values)
    keep = values != 0
    n_kept = int(np.count_nonzero(keep))
    if n_kept == n:  # the common case: no spike-ins, dropped genes or empty cells to remove
        out_indices[:n] = indices
        return n, indptr, int((~positive).sum())
    out_data[:n_kept] = values[keep]  # values[keep] is a copy, so overwriting its source is safe
    out_indices[:n_kept] = indices[keep]
    per_row = np.zeros(counts.size, dtype=np.int64)
    per_row[stored] = np.add.reduceat(keep, indptr[:-1][stored], dtype=np.int64)
    kept = np.zeros(indptr.size, dtype=np.int64)
    np.cumsum(per_row, out=kept[1:])
    return n_kept, kept, int((~positive).sum())


def _tpm_csr(X: sparse.csr_matrix | sparse.csr_array, factor: np.ndarray | None) -> tuple[Any, int]:
    """TPM of an in-memory CSR matrix, block by block, straight into the result's arrays."""
    data = np.empty(X.nnz, dtype=np.float64)
    indices = np.empty(X.nnz, dtype=X.indices.dtype)
    indptr = np.zeros(X.shape[0] + 1, dtype=X.indptr.dtype)
    offset, n_zero = 0, 0
    for start, end in _row_blocks(X.indptr):
        lo, hi = int(X.indptr[start]), int(X.indptr[end])
        ptr = X.indptr[start : end + 1].astype(np.int64) - lo
        n, ptr, zero = _tpm_block(X.data[lo:hi], X.indices[lo:hi], ptr, factor, data[offset:], indices[offset:])
        indptr[start + 1 : end + 1] = ptr[1:] + offset
        offset += n
        n_zero += zero
    if offset < X.nnz:  # shrink in place (realloc), rather than copy, when zeros were left out
        data.resize(offset, refcheck=False)
        indices.resize(offset, refcheck=False)
    kind = sparse.csr_array if isinstance(X, sparse.sparray) else sparse.csr_matrix
    return kind((data, indices, indptr), shape=X.shape), n_zero


def _tpm_backed(adata: AnnData, factor: np.ndarray | None, layer: str, provenance: dict[str, Any]) -> None:
    """Stream ``X`` of a backed AnnData into ``layers/<layer>`` of its own file, then reopen it."""
    import h5py

    try:
        from anndata.io import sparse_dataset, write_elem
    except ImportError:  # pragma: no cover - anndata < 0.11
        from anndata.experimental import sparse_dataset, write_elem

    if adata.is_view:
        raise TPMError("TPM of a view of a backed AnnData: load the subset with .to_memory() first")
    path = Path(adata.filename)
    adata.file.close()  # HDF5 refuses a second, writable handle on an open file
    try:
        try:
            f = h5py.File(path, "r+")
        except OSError as e:
            raise OutputError(f"cannot open the file for writing the TPM layer: {e}", path=path) from e
        with f:
            provenance["n_cells_all_zero"] = _write_layer(f, factor, layer, path)
            uns = f.require_group("uns")
            if "gseio_tpm" in uns:
                del uns["gseio_tpm"]
            write_elem(uns, "gseio_tpm", provenance)
    finally:
        adata.file.open()  # the same file, in the mode it was opened with
    adata.layers[layer] = sparse_dataset(adata.file["layers"][layer])
    adata.uns["gseio_tpm"] = provenance


def _write_layer(f: Any, factor: np.ndarray | None, layer: str, path: Path) -> int:
    """Write the TPM of ``f["X"]`` as a CSR group ``layers/<layer>``; the number of all-zero cells."""
    x = f["X"]
    if not (hasattr(x, "attrs") and x.attrs.get("encoding-type") == "csr_matrix"):
        raise TPMError("backed X is not a CSR matrix; load it with .to_memory() first", path=path)
    indptr = x["indptr"][:].astype(np.int64)
    n_cols = int(x.attrs["shape"][1])
    layers = f.require_group("layers")
    if "encoding-type" not in layers.attrs:
        layers.attrs.update({"encoding-type": "dict", "encoding-version": "0.1.0"})
    partial = f".{layer}.partial"  # the layer appears under its name only once complete
    if partial in layers:
        del layers[partial]
    group = layers.create_group(partial)
    chunk = (min(1 << 18, max(int(indptr[-1]), 1)),)
    out_data = group.create_dataset("data", (0,), maxshape=(None,), dtype=np.float64, chunks=chunk)
    out_idx = group.create_dataset("indices", (0,), maxshape=(None,), dtype=x["indices"].dtype, chunks=chunk)
    out_ptr = np.zeros(indptr.size, dtype=x["indptr"].dtype)
    offset, n_zero = 0, 0
    scratch_data = np.empty(0)
    try:
        for start, end in _row_blocks(indptr):
            lo, hi = int(indptr[start]), int(indptr[end])
            if scratch_data.size < hi - lo:
                scratch_data, scratch_idx = np.empty(hi - lo), np.empty(hi - lo, dtype=out_idx.dtype)
            ptr = indptr[start : end + 1] - lo
            n, ptr, zero = _tpm_block(
                x["data"][lo:hi], x["indices"][lo:hi], ptr, factor, scratch_data, scratch_idx
            )
            out_data.resize((offset + n,))
            out_data[offset:] = scratch_data[:n]
            out_idx.resize((offset + n,))
            out_idx[offset:] = scratch_idx[:n]
            out_ptr[start + 1 : end + 1] = ptr[1:] + offset
            offset += n
            n_zero += zero
        group.create_dataset("indptr", data=out_ptr)
        group.attrs.update({"encoding-type": "csr_matrix", "encoding-version": "0.1.0"})
        group.attrs["shape"] = np.array([indptr.size - 1, n_cols], dtype=np.int64)
    except BaseException:
        del layers[partial]
        raise
    if layer in layers:
        del layers[layer]
    layers.move(partial, layer)
    return n_zero
