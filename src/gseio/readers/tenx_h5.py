"""10x Genomics HDF5 feature-barcode matrices (Cell Ranger, Space Ranger, Xenium).

Two layouts:

- v2 (Cell Ranger 1-2): one group per genome, ``/<genome>/{barcodes, data, indices,
  indptr, shape, genes, gene_names}``; a barnyard run has several genomes over the same
  barcodes, read side by side (all by default, or the one ``genome=`` names);
- v3 (Cell Ranger 3+, Space Ranger, Xenium): ``/matrix/{barcodes, data, indices, indptr,
  shape, features/{id, name, feature_type, genome}}``.

The matrix is stored CSC over genes x barcodes, which is CSR over barcodes x genes: the
arrays are taken as they are. The join key is the feature id; ``var`` gets
``gene_symbols``, ``feature_types`` (v3) and ``genome``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import _open
from .._options import DType, DuplicateGenes
from .._piece import Piece, check_unique_cells
from .._registry import FormatSpec, register_format
from .._source import Source
from .._unit import ReadOptions, Unit
from ..errors import FormatError
from . import _hdf5, _mtx, _names, _repeats, _tenx

if TYPE_CHECKING:
    import h5py
    from anndata import AnnData

__all__ = ["read_10x_h5", "read_unit", "sniff"]

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
#: Datasets every matrix group holds, in both layouts.
MATRIX_DATASETS = ("barcodes", "data", "indices", "indptr", "shape")


def _is_matrix_group(group: Any, v3: bool) -> bool:
    import h5py

    if not isinstance(group, h5py.Group) or not all(name in group for name in MATRIX_DATASETS):
        return False
    return "features" in group if v3 else "genes" in group


def _genome_groups(f: h5py.File) -> list[str]:
    return [name for name in f if _is_matrix_group(f[name], v3=False)]


def sniff(head: bytes, source: Source) -> float:
    """1.0 for an HDF5 file with a 10x matrix group (``/matrix`` or v2 genome groups)."""
    if not head.startswith(HDF5_MAGIC):
        return 0.0
    try:
        with _open.open_hdf5(source) as f:
            found = ("matrix" in f and _is_matrix_group(f["matrix"], v3=True)) or bool(_genome_groups(f))
    except Exception:  # a sniffer never raises; anything unreadable is simply not this format
        return 0.0
    return 1.0 if found else 0.0


def _strings(dataset: Any) -> np.ndarray:
    values = dataset[()]  # fixed-length (|S) or variable-length strings, read by h5py as bytes
    return np.array(
        [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values.tolist()], dtype=object
    )


def _arrays(group: h5py.Group, n_features: int, source: Source) -> tuple[list[str], _mtx.Csr]:
    """Barcodes and CSR arrays of a matrix group, checked against its shape."""
    shape = tuple(int(x) for x in group["shape"][()])
    barcodes = _strings(group["barcodes"]).tolist()
    indptr = group["indptr"][()].astype(np.int64, copy=False)
    indices = group["indices"][()].astype(np.int32, copy=False)
    data = group["data"][()].astype(np.float64, copy=False)
    where = f"group /{group.name.strip('/')}"
    if len(shape) != 2 or shape != (n_features, len(barcodes)):
        raise FormatError(
            f"{where}: shape {shape} does not match its {n_features} features and {len(barcodes)} barcodes",
            path=source,
        )
    if indptr.size != len(barcodes) + 1 or indptr[0] != 0 or indptr[-1] != data.size or indices.size != data.size:
        raise FormatError(f"{where}: indptr, indices and data are inconsistent (a damaged file?)", path=source)
    if np.any(np.diff(indptr) < 0):
        raise FormatError(f"{where}: indptr decreases (a damaged file?)", path=source)
    if indices.size and (indices.min() < 0 or indices.max() >= n_features):
        raise FormatError(f"{where}: a feature index lies outside its {n_features} features", path=source)
    if (repeat := _repeats.first_repeat(indptr, indices, n_features)) is not None:
        barcode, feature = repeat
        raise FormatError(
            f"{where}: barcode {barcode + 1} lists feature {feature + 1} twice. {_repeats.ADVICE}", path=source
        )
    _mtx.check_values(data, source, lambda k: f"{where}, entry {k + 1}")
    check_unique_cells(barcodes, source, lambda k: f"{where}, barcode {k + 1}")
    return barcodes, _mtx.Csr(indptr, indices, data)


def _v3(f: h5py.File, source: Source) -> tuple[list[str], _mtx.Csr, _tenx.Features]:
    group = f["matrix"]
    features = group["features"]
    ids = _strings(features["id"])

    def optional(name: str) -> np.ndarray | None:
        return _strings(features[name]) if name in features else None

    table = _tenx.Features(
        ids, optional("name"), optional("feature_type"), optional("genome"), where=features["id"].name
    )
    barcodes, csr = _arrays(group, len(ids), source)
    return barcodes, csr, table


def _v2(f: h5py.File, genome: str | None, source: Source) -> tuple[list[str], _mtx.Csr, _tenx.Features, str]:
    genomes = _genome_groups(f)
    if genome is not None:
        if genome not in genomes:
            raise FormatError(f"no genome {genome!r} in this file; its genomes: {', '.join(genomes)}", path=source)
        genomes = [genome]
    parts = []
    for name in genomes:
        group = f[name]
        ids = _strings(group["genes"])
        symbols = _strings(group["gene_names"]) if "gene_names" in group else None
        table = _tenx.Features(
            ids, symbols, None, np.full(len(ids), name, dtype=object), where=group["genes"].name
        )
        parts.append((*_arrays(group, len(ids), source), table))
    barcodes = parts[0][0]
    if any(p[0] != barcodes for p in parts[1:]):
        raise FormatError(
            f"the genomes {', '.join(genomes)} do not share their barcodes; choose one with genome=", path=source
        )
    if len(parts) == 1:
        return barcodes, parts[0][1], parts[0][2], f"v2 layout, genome {genomes[0]}"
    return (
        barcodes,
        _side_by_side([p[1] for p in parts], [len(p[2]) for p in parts]),
        _concat([p[2] for p in parts]),
        f"v2 layout, genomes {', '.join(genomes)} side by side",
    )


def _side_by_side(parts: list[_mtx.Csr], widths: list[int]) -> _mtx.Csr:
    """Join CSR blocks over the same cells column-wise (each genome's genes after the previous)."""
    from scipy import sparse

    blocks = [
        sparse.csr_matrix((p.data, p.indices, p.indptr), shape=(p.indptr.size - 1, w))
        for p, w in zip(parts, widths, strict=True)
    ]
    joined = sparse.hstack(blocks, format="csr")
    return _mtx.Csr(joined.indptr.astype(np.int64), joined.indices.astype(np.int32), joined.data)


def _concat(tables: list[_tenx.Features]) -> _tenx.Features:
    def column(name: str) -> np.ndarray | None:
        values = [getattr(t, name) for t in tables]
        return None if any(v is None for v in values) else np.concatenate(values)

    where = " + ".join(t.where for t in tables)  # the genomes' genes, one after the other
    return _tenx.Features(column("ids"), column("symbols"), column("types"), column("genomes"), where=where)


def _matrix(f: h5py.File, genome: str | None, source: Source) -> tuple[list[str], _mtx.Csr, _tenx.Features, str]:
    """Barcodes, CSR arrays, features and a description of the layout of an open 10x HDF5 file."""
    if "matrix" in f and _is_matrix_group(f["matrix"], v3=True):
        if genome is not None:
            raise FormatError(
                "genome= selects a genome group of the v2 layout; this is a v3 file (one matrix for all genomes, "
                "listed in var['genome'])",
                path=source,
            )
        return (*_v3(f, source), "v3 layout (/matrix)")
    if _genome_groups(f):
        return _v2(f, genome, source)
    raise FormatError(
        "an HDF5 file without a 10x matrix group (/matrix, or /<genome> with barcodes, genes, data, indices, "
        "indptr, shape)",
        path=source,
    )


def read_unit(unit: Unit, options: ReadOptions) -> list[Piece]:
    """Read one 10x HDF5 matrix into a :class:`~gseio._piece.Piece` of its barcodes."""
    source = unit.main
    with _hdf5.reading(source), _open.open_hdf5(source) as f:  # compressed too, checked to be self-contained
        barcodes, csr, table, layout = _matrix(f, options.genome, source)
    notes = {"layout": layout}
    cells = _names.clean(barcodes, what="barcode", path=source, where=lambda k: f"barcode {k + 1}")
    if cells.note is not None:  # barcodes that differed by their blanks only are one barcode now
        check_unique_cells(list(cells.names), source, lambda k: f"barcode {k + 1}")
    cells.into(notes, "cell_names")
    selection = _tenx.select_features(table, options, source)
    return [_tenx.make_piece(source, list(cells.names), csr, selection, notes)]


def read_10x_h5(
    path: str | os.PathLike[str],
    *,
    genome: str | None = None,
    gene_expression_only: bool = False,
    duplicate_genes: DuplicateGenes = "sum",
    dtype: DType = "auto",
) -> AnnData:
    """Read a 10x HDF5 matrix (``filtered_feature_bc_matrix.h5`` and kin).

    Parameters
    ----------
    path
        A Cell Ranger (v2 or v3+), Space Ranger or Xenium ``.h5`` matrix.
    genome
        v2 files with several genomes: read only this one (default: all, side by side).
    gene_expression_only
        Keep only features of type ``Gene Expression`` (v3 files).
    duplicate_genes
        A feature id repeated: ``"sum"`` its counts (default), keep the ``"first"``, or
        raise (``"error"``).
    dtype
        ``"auto"`` (float32 when every count is an integer below 2**24), ``"float32"``
        or ``"float64"``.

    Returns
    -------
    AnnData, barcodes x features, ``X`` CSR without stored zeros; ``var_names`` are the
    feature ids, ``var`` holds ``gene_symbols``, ``feature_types`` (v3) and ``genome``.

    Raises
    ------
    ~gseio.errors.InputError
        Not a 10x HDF5 matrix, a damaged HDF5 file, an unknown ``genome`` (the message
        lists the file's), inconsistent arrays, a barcode given twice, or a negative or
        non-finite count.
    """
    from ..assemble import read

    return read(
        path,
        format="tenx_h5",
        duplicate_genes=duplicate_genes,
        dtype=dtype,
        genome=genome,
        gene_expression_only=gene_expression_only,
    )


register_format(
    FormatSpec(
        name="tenx_h5",
        description="10x Genomics HDF5 feature-barcode matrix (Cell Ranger v2/v3+, Space Ranger, Xenium)",
        sniff=sniff,
        read_unit=read_unit,
    )
)
