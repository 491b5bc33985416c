r"""The curation platform's template folder (see ``docs/template.md``).

The platform reads the folder with ``scipy.io.mmread(...).tocsr()`` and
``pandas.read_csv(sep="\\t")``; names, headers, orientation (cells x genes) and order
are a contract.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np
import pandas as pd
from scipy import sparse

from .._piece import exact_in_float32
from ..errors import OutputError, TemplateError
from ._atomic import atomic_outputs

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["CELL_ANNOTATION_COLUMNS", "RAW_FILES", "read_template", "write_template"]

RAW_MATRIX = "expressionMatrix_rawCounts.mtx"
RAW_CELLS = "cellID_rawCounts.tsv"
RAW_GENES = "genes_rawCounts.tsv"
CELL_ANNOTATION = "cellAnnotation.tsv"
#: The files :func:`write_template` writes.
RAW_FILES = (RAW_MATRIX, RAW_CELLS, RAW_GENES, CELL_ANNOTATION)
#: The platform's ``cellAnnotation.tsv`` columns, in order.
CELL_ANNOTATION_COLUMNS = (
    "cellID",
    "clusterID",
    "clusterName",
    "sampleID",
    "cellOntologyName",
    "cellOntologyID",
    "meta_sourceName",
    "meta_tissue",
    "meta_description",
    "FACSMarker",
    "tSNE1",
    "tSNE2",
    "UMAP1",
    "UMAP2",
)
NOT_AVAILABLE = "notAvailable"


def _check_names(names: pd.Index, what: str) -> list[str]:
    values = [str(v) for v in names]
    bad = [v for v in values if any(c in v for c in '\t\n\r"')]
    if bad:
        raise OutputError(
            f"{len(bad)} {what} contain a tab, newline or double quote (e.g. {bad[0]!r}); "
            "they cannot be written to a one-column TSV"
        )
    return values


def _write_column(path: Path, header: str, values: list[str]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(header + "\n")
        if values:
            fh.write("\n".join(values) + "\n")


def _row_blocks(adata: AnnData, block_nnz: int = 1 << 22) -> Iterator[tuple[int, sparse.csr_matrix]]:
    """The matrix as CSR blocks of rows, without stored zeros; a backed matrix is read block by block."""
    X = adata.X
    if sparse.issparse(X) and X.format == "csr":
        indptr = X.indptr
    elif adata.isbacked and hasattr(X, "format") and X.format == "csr":
        import h5py

        with h5py.File(adata.filename, "r") as f:
            indptr = f["X/indptr"][:]
    else:  # dense or CSC (in memory): one conversion
        X = sparse.csr_matrix(X)
        indptr = X.indptr
    start = 0
    while start < adata.n_obs:
        stop = int(np.searchsorted(indptr, indptr[start] + block_nnz, side="right")) - 1
        stop = min(max(stop, start + 1), adata.n_obs)
        block = sparse.csr_matrix(X[start:stop], copy=True)
        block.eliminate_zeros()
        yield start, block
        start = stop


def _field(adata: AnnData) -> tuple[str, int]:
    """The Matrix Market field the values need (``integer`` or ``real``) and the non-zero count."""
    integral, nnz = True, 0
    for _, block in _row_blocks(adata):
        data = block.data
        if data.size and not np.all(np.isfinite(data)):
            raise OutputError("the matrix holds NaN or infinite values; the template needs finite counts")
        integral = integral and (np.issubdtype(data.dtype, np.integer) or bool(np.all(np.floor(data) == data)))
        nnz += data.size
    return ("integer" if integral else "real"), nnz


def _write_mtx(adata: AnnData, fh: BinaryIO) -> None:
    """Matrix Market coordinate, cells x genes, streamed in row blocks (memory holds one block)."""
    from scipy.io import mmwrite

    field, nnz = _field(adata)
    fh.write(f"%%MatrixMarket matrix coordinate {field} general\n%\n{adata.n_obs} {adata.n_vars} {nnz}\n".encode())
    for start, block in _row_blocks(adata):
        coo = block.tocoo()
        values = coo.data.astype(np.int64 if field == "integer" else np.float64)
        # rows shifted to their place in the whole matrix; fast_matrix_market formats the block
        shifted = sparse.coo_matrix(
            (values, (coo.row + start, coo.col)), shape=(start + block.shape[0], adata.n_vars)
        )
        buffer = io.BytesIO()
        mmwrite(buffer, shifted, field=field, symmetry="general")
        text = buffer.getvalue()
        body = 0
        while text.startswith(b"%", body):  # banner and comments
            body = text.index(b"\n", body) + 1
        body = text.index(b"\n", body) + 1  # the block's own size line
        fh.write(memoryview(text)[body:])


def write_template(
    adata: AnnData,
    outdir: str | os.PathLike[str],
    *,
    sample_key: str = "sample",
    overwrite: bool = False,
) -> list[Path]:
    """Write the raw-count part of the platform's template.

    Writes ``expressionMatrix_rawCounts.mtx`` (Matrix Market coordinate, general,
    field ``integer`` when every value is integral else ``real`` at full precision,
    rows = cells, columns = genes, no stored zeros), ``cellID_rawCounts.tsv``
    (header ``cellID``), ``genes_rawCounts.tsv`` (header ``genes``) and
    ``cellAnnotation.tsv`` (the platform's columns; ``cellID`` and ``sampleID``
    filled, the others ``notAvailable``). Every file is written under a temporary
    name and renamed only when all are complete.

    Parameters
    ----------
    adata
        Cells x genes; ``X`` holds the raw counts (sparse or dense).
    outdir
        The folder (created if missing).
    sample_key
        The ``obs`` column that fills ``sampleID`` (``notAvailable`` if absent).
    overwrite
        Replace template files that exist already.

    Returns
    -------
    The paths written.

    Raises
    ------
    ~gseio.errors.OutputError
        Files exist and ``overwrite`` is false, names contain tabs or newlines, or
        ``X`` holds non-finite values.
    """
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    finals = [outdir / name for name in RAW_FILES]
    existing = [p.name for p in finals if p.exists()]
    if existing and not overwrite:
        raise OutputError(
            f"template files exist already ({', '.join(existing)}); pass overwrite=True", path=outdir
        )
    cells = _check_names(adata.obs_names, "cell names")
    genes = _check_names(adata.var_names, "gene names")
    _field(adata)  # refuse non-finite values before any file is created
    annotation = pd.DataFrame(NOT_AVAILABLE, index=range(adata.n_obs), columns=list(CELL_ANNOTATION_COLUMNS))
    annotation["cellID"] = cells
    if sample_key in adata.obs:
        annotation["sampleID"] = _check_names(pd.Index(adata.obs[sample_key].astype(str)), "sample ids")
    with atomic_outputs(finals) as (mtx, cell_file, gene_file, annotation_file):
        with open(mtx, "wb") as fh:
            _write_mtx(adata, fh)
        _write_column(cell_file, "cellID", cells)
        _write_column(gene_file, "genes", genes)
        annotation.to_csv(annotation_file, sep="\t", index=False, lineterminator="\n")
    return finals


def read_template(outdir: str | os.PathLike[str]) -> AnnData:
    """Read a template folder's raw counts back into an AnnData.

    Parameters
    ----------
    outdir
        A folder written by :func:`write_template` (or by the platform).

    Returns
    -------
    AnnData, cells x genes, ``X`` CSR (float32 when every value is an integer below
    2**24, else float64), ``obs_names`` from ``cellID_rawCounts.tsv``, ``var_names``
    from ``genes_rawCounts.tsv``; ``obs`` holds ``cellAnnotation.tsv``'s columns
    (as strings) when that file exists, with ``sampleID`` also as ``sample``.

    Raises
    ------
    ~gseio.errors.TemplateError
        A file is missing, has the wrong header, or disagrees with the matrix.
    """
    import anndata as ad
    from scipy.io import mmread

    outdir = Path(outdir)
    for name in (RAW_MATRIX, RAW_CELLS, RAW_GENES):
        if not (outdir / name).is_file():
            raise TemplateError(f"{name} is missing", path=outdir)
    cells = _read_column(outdir / RAW_CELLS, "cellID")
    genes = _read_column(outdir / RAW_GENES, "genes")
    try:
        X = sparse.csr_matrix(mmread(outdir / RAW_MATRIX))
    except (ValueError, OSError) as e:
        raise TemplateError(f"cannot be read as Matrix Market: {e}", path=outdir / RAW_MATRIX) from e
    if X.shape != (len(cells), len(genes)):
        raise TemplateError(
            f"the matrix is {X.shape[0]} x {X.shape[1]} but there are {len(cells)} cell ids and "
            f"{len(genes)} genes (the matrix must be cells x genes)",
            path=outdir / RAW_MATRIX,
        )
    X = X.astype(np.float32 if exact_in_float32(X.data) else np.float64)
    X.sort_indices()
    obs = pd.DataFrame(index=pd.Index(cells))
    annotation_path = outdir / CELL_ANNOTATION
    if annotation_path.is_file():
        annotation = pd.read_csv(annotation_path, sep="\t", dtype=str, keep_default_na=False)
        if "cellID" not in annotation or annotation["cellID"].tolist() != cells:
            raise TemplateError(
                f"its cellID column does not list the cells of {RAW_CELLS} in order", path=annotation_path
            )
        obs = annotation.drop(columns="cellID").set_axis(pd.Index(cells), axis=0)
        if "sampleID" in obs:
            obs["sample"] = obs["sampleID"].astype("category")
    return ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=pd.Index(genes)))


def _read_column(path: Path, header: str) -> list[str]:
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    if list(frame.columns) != [header]:
        raise TemplateError(f"expected one column with header {header!r}, found {list(frame.columns)}", path=path)
    return frame[header].tolist()
