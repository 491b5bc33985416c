r"""The curation platform's template folder (see ``docs/template.md``).

The platform reads the folder with ``scipy.io.mmread(...).tocsr()`` and
``pandas.read_csv(sep="\\t")``; names, headers, orientation (cells x genes) and order
are a contract.
"""

from __future__ import annotations

import contextlib
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
from ._atomic import atomic_outputs, output_error
from ._gene_annotation import GENE_ANNOTATION_COLUMNS, gene_annotation
from ._publish import PUBLISHING_MARKER

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["CELL_ANNOTATION_COLUMNS", "RAW_FILES", "read_template", "write_template"]

RAW_MATRIX = "expressionMatrix_rawCounts.mtx"
RAW_CELLS = "cellID_rawCounts.tsv"
RAW_GENES = "genes_rawCounts.tsv"
CELL_ANNOTATION = "cellAnnotation.tsv"
TPM_MATRIX = "expressionMatrix_TPM.mtx"
GENE_ANNOTATION = "geneAnnotation.tsv"
#: The files :func:`write_template` writes.
RAW_FILES = (RAW_MATRIX, RAW_CELLS, RAW_GENES, CELL_ANNOTATION)
#: The files it adds with ``tpm=True``.
TPM_FILES = (TPM_MATRIX, GENE_ANNOTATION)
#: TPM columns are the raw genes minus ERCC spike-ins (names starting with this).
SPIKE_IN_PREFIX = "ERCC-"
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
#: Integers up to this size are exact in a float64, which is how most readers hold Matrix Market values.
EXACT_INTEGER = 2**53


def _check_names(names: pd.Index, what: str, path: Path) -> list[str]:
    values = [str(v) for v in names]
    bad = [v for v in values if any(c in v for c in '\t\n\r"')]
    if bad:
        raise OutputError(
            f"{len(bad)} {what} contain a tab, newline or double quote (e.g. {bad[0]!r}); "
            "they cannot be written to a one-column TSV",
            path=path,
        )
    return values


@contextlib.contextmanager
def _writing(final: Path) -> Iterator[None]:
    """Name ``final`` (not the temporary file written) in a system error met while writing it."""
    try:
        yield
    except OSError as e:
        raise output_error(e, final) from e


def _write_column(path: Path, header: str, values: list[str]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(header + "\n")
        if values:
            fh.write("\n".join(values) + "\n")


def _row_blocks(
    adata: AnnData, layer: str | None = None, columns: np.ndarray | None = None, *, block_nnz: int = 1 << 22
) -> Iterator[tuple[int, sparse.csr_matrix]]:
    """``X`` (or a layer) as CSR blocks of rows without stored zeros; a backed matrix is read block by block.

    ``columns`` (a boolean mask) keeps only those columns, in order.
    """
    X = adata.X if layer is None else adata.layers[layer]
    if sparse.issparse(X) and X.format == "csr":
        indptr = X.indptr
    elif adata.isbacked and hasattr(X, "format") and X.format == "csr":
        import h5py

        with h5py.File(adata.filename, "r") as f:
            indptr = f["X/indptr" if layer is None else f"layers/{layer}/indptr"][:]
    else:  # dense or CSC (in memory): one conversion
        X = sparse.csr_matrix(X)
        indptr = X.indptr
    start = 0
    while start < adata.n_obs:
        stop = int(np.searchsorted(indptr, indptr[start] + block_nnz, side="right")) - 1
        stop = min(max(stop, start + 1), adata.n_obs)
        block = sparse.csr_matrix(X[start:stop], copy=True)
        if columns is not None:
            block = block[:, columns]
        block.eliminate_zeros()
        yield start, block
        start = stop


def _field(
    adata: AnnData, layer: str | None = None, columns: np.ndarray | None = None, *, path: Path | None = None
) -> tuple[str, int]:
    """The Matrix Market field the values need (``integer`` or ``real``) and the non-zero count.

    ``integer`` only when every value is an integer that a float64 holds exactly
    (``|v| <= 2**53``): larger floats such as ``1e300`` are integral too, but int64 cannot
    hold them and readers would not get them back; they are written ``real``, exactly.
    """
    what = "the matrix" if layer is None else f"layer {layer!r}"
    integral, nnz = True, 0
    for _, block in _row_blocks(adata, layer, columns):
        data = block.data
        nnz += data.size
        if not data.size:
            continue
        if data.dtype.kind in "iub":
            if data.dtype.kind == "u" and int(data.max()) > np.iinfo(np.int64).max:
                raise OutputError(f"{what} holds integers beyond the int64 range", path=path)
            continue  # integers are written exactly as integers
        if not np.all(np.isfinite(data)):
            raise OutputError(f"{what} holds NaN or infinite values; the template needs finite values", path=path)
        exact = bool(np.all(np.abs(data) <= EXACT_INTEGER)) and bool(np.all(np.floor(data) == data))
        integral = integral and exact
    return ("integer" if integral else "real"), nnz


def _write_mtx(
    adata: AnnData, fh: BinaryIO, layer: str | None = None, columns: np.ndarray | None = None,
    field: str | None = None, scanned: tuple[str, int] | None = None,
) -> None:  # fmt: skip
    """Matrix Market coordinate, cells x genes, streamed in row blocks (memory holds one block).

    ``scanned``: what :func:`_field` found already (the values are not scanned twice).
    """
    from scipy.io import mmwrite

    needed, nnz = scanned or _field(adata, layer, columns)
    field = field or needed
    n_cols = adata.n_vars if columns is None else int(columns.sum())
    fh.write(f"%%MatrixMarket matrix coordinate {field} general\n%\n{adata.n_obs} {n_cols} {nnz}\n".encode())
    for start, block in _row_blocks(adata, layer, columns):
        coo = block.tocoo()
        values = coo.data.astype(np.int64 if field == "integer" else np.float64)
        # rows shifted to their place in the whole matrix; fast_matrix_market formats the block
        shape = (start + block.shape[0], n_cols)
        shifted = sparse.coo_matrix((values, (coo.row + start, coo.col)), shape=shape)
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
    tpm: bool = False,
    tpm_layer: str = "tpm",
    gene_table: pd.DataFrame | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """Write the platform's template: the raw counts, and with ``tpm=True`` the TPM part.

    Writes ``expressionMatrix_rawCounts.mtx`` (Matrix Market coordinate, general,
    field ``integer`` when every value is an integer up to 2**53 (exact in a float64) else
    ``real`` at full precision (each value written so that it reads back exactly),
    rows = cells, columns = genes, no stored zeros), ``cellID_rawCounts.tsv``
    (header ``cellID``), ``genes_rawCounts.tsv`` (header ``genes``) and
    ``cellAnnotation.tsv`` (the platform's columns; ``cellID`` and ``sampleID``
    filled, the others ``notAvailable``). With ``tpm=True`` also
    ``expressionMatrix_TPM.mtx`` (field ``real``; the raw genes minus ERCC spike-ins, in
    the same order; the same cells) and ``geneAnnotation.tsv`` (``geneSymbol``,
    ``ensemblID``, ``ensemblIDVersion``, ``geneID``, one row per TPM column). Matrices
    are written in row blocks, so a backed AnnData is never loaded whole. Every file is
    written under a temporary name and renamed only when all are complete.

    Parameters
    ----------
    adata
        Cells x genes; ``X`` holds the raw counts (sparse or dense, in memory or backed).
    outdir
        The folder (created if missing).
    sample_key
        The ``obs`` column that fills ``sampleID`` (``notAvailable`` if absent).
    tpm
        Also write the TPM matrix (from ``adata.layers[tpm_layer]``, see
        :func:`gseio.pp.tpm`) and the gene annotation.
    tpm_layer
        The layer holding TPM values.
    gene_table
        Optional gene table (:func:`gseio.genes.gene_table`) to fill symbols and Ensembl IDs
        in ``geneAnnotation.tsv``.
    overwrite
        Replace template files that exist already.

    Returns
    -------
    The paths written.

    Raises
    ------
    ~gseio.errors.OutputError
        Files exist and ``overwrite`` is false, names contain tabs or newlines, ``X``
        holds non-finite values, ``tpm=True`` without a TPM layer, or a file cannot be
        written (a full disk, a read-only file system: the error names the file).
    """
    outdir = Path(outdir)
    if tpm and tpm_layer not in adata.layers:
        raise OutputError(
            f"no layer {tpm_layer!r} to write TPM from: compute it first with "
            "gseio.pp.tpm(adata, protocol=...) (gseio build: --tpm --protocol NAME)"
        )
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise output_error(e, outdir) from e
    finals = [outdir / name for name in (*RAW_FILES, *(TPM_FILES if tpm else ()))]
    existing = [p.name for p in finals if p.exists()]
    if existing and not overwrite:
        raise OutputError(
            f"template files exist already ({', '.join(existing)}); pass overwrite=True", path=outdir
        )
    cells = _check_names(adata.obs_names, "cell names", finals[1])
    genes = _check_names(adata.var_names, "gene names", finals[2])
    scanned = _field(adata, path=finals[0])  # refuse non-finite values before any file is created
    annotation = pd.DataFrame(NOT_AVAILABLE, index=range(adata.n_obs), columns=list(CELL_ANNOTATION_COLUMNS))
    annotation["cellID"] = cells
    if sample_key in adata.obs:
        annotation["sampleID"] = _check_names(pd.Index(adata.obs[sample_key].astype(str)), "sample ids", finals[3])
    with atomic_outputs(finals) as temps:
        mtx, cell_file, gene_file, annotation_file = temps[:4]
        with _writing(finals[0]), open(mtx, "wb") as fh:
            _write_mtx(adata, fh, scanned=scanned)
        with _writing(finals[1]):
            _write_column(cell_file, "cellID", cells)
        with _writing(finals[2]):
            _write_column(gene_file, "genes", genes)
        with _writing(finals[3]):
            annotation.to_csv(annotation_file, sep="\t", index=False, lineterminator="\n")
        if tpm:
            keep = np.asarray(~adata.var_names.str.startswith(SPIKE_IN_PREFIX))
            with _writing(finals[4]), open(temps[4], "wb") as fh:
                _write_mtx(adata, fh, layer=tpm_layer, columns=keep, field="real",
                           scanned=_field(adata, tpm_layer, keep, path=finals[4]))  # fmt: skip
            genes_table = gene_annotation(adata.var.loc[keep], gene_table).fillna(NOT_AVAILABLE)
            with _writing(finals[5]):
                genes_table.to_csv(temps[5], sep="\t", index=False, lineterminator="\n")
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
    (as strings) when that file exists, with ``sampleID`` also as ``sample``. When the
    TPM part is there, ``layers["tpm"]`` holds it (ERCC spike-in columns, absent from the
    TPM matrix, are zero) and ``var`` the ``geneAnnotation.tsv`` columns (``notAvailable``
    for spike-ins).

    Raises
    ------
    ~gseio.errors.TemplateError
        A file is missing, has the wrong header, or disagrees with the matrix; or
        ``gseio build`` was interrupted while it replaced the folder's files one by one
        (its ``.gseio-publishing`` marker is there): the files may come from two builds.
    """
    import anndata as ad
    from scipy.io import mmread

    outdir = Path(outdir)
    if (outdir / PUBLISHING_MARKER).exists():
        raise TemplateError(
            f"a gseio build was interrupted while it replaced these files one by one ({PUBLISHING_MARKER} is "
            "there): they may mix two builds; run the build again (with --overwrite)",
            path=outdir,
        )
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
    adata = ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=pd.Index(genes)))
    if (outdir / TPM_MATRIX).is_file():
        _read_tpm(adata, outdir)
    return adata


def _read_tpm(adata: AnnData, outdir: Path) -> None:
    """Put the TPM matrix back in ``layers["tpm"]``, its columns in place among the raw genes."""
    from scipy.io import mmread

    path = outdir / TPM_MATRIX
    try:
        tpm = sparse.csr_matrix(mmread(path), dtype=np.float64)
    except (ValueError, OSError) as e:
        raise TemplateError(f"cannot be read as Matrix Market: {e}", path=path) from e
    keep = np.flatnonzero(~adata.var_names.str.startswith(SPIKE_IN_PREFIX))
    if tpm.shape != (adata.n_obs, keep.size):
        raise TemplateError(
            f"the TPM matrix is {tpm.shape[0]} x {tpm.shape[1]}; it must be the {adata.n_obs} cells x the "
            f"{keep.size} raw genes that are not ERCC spike-ins",
            path=path,
        )
    full = sparse.csr_matrix((tpm.data, keep[tpm.indices], tpm.indptr), shape=adata.shape)
    full.sort_indices()
    adata.layers["tpm"] = full
    genes_path = outdir / GENE_ANNOTATION
    if genes_path.is_file():
        genes = pd.read_csv(genes_path, sep="\t", dtype=str, keep_default_na=False)
        if "geneID" not in genes or genes["geneID"].tolist() != adata.var_names[keep].tolist():
            raise TemplateError("its geneID column does not list the TPM columns in order", path=genes_path)
        for column in GENE_ANNOTATION_COLUMNS[:3]:
            values = np.full(adata.n_vars, NOT_AVAILABLE, dtype=object)
            values[keep] = genes[column].to_numpy(dtype=object)
            adata.var[column] = values


def _read_column(path: Path, header: str) -> list[str]:
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    if list(frame.columns) != [header]:
        raise TemplateError(f"expected one column with header {header!r}, found {list(frame.columns)}", path=path)
    return frame[header].tolist()
