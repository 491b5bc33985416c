"""10x Genomics Matrix Market triplets (Cell Ranger MEX): ``matrix.mtx`` + barcodes + features.

Layouts read:

- Cell Ranger 2 (``matrix.mtx``, ``genes.tsv``: id and symbol, ``barcodes.tsv``) and
  Cell Ranger 3+ (``matrix.mtx.gz``, ``features.tsv.gz``: id, symbol, feature type,
  ``barcodes.tsv.gz``), each in its own folder;
- GEO-flattened folders, where every sample's triplet carries a prefix and several sit
  side by side (``GSM7022367_1_matrix.mtx.gz``, ``GSM7022367_1_barcodes.tsv.gz``, ...),
  possibly with one series-level features file shared by all samples
  (``GSE123_features.tsv.gz``).

Triplets are claimed by name (:func:`group`) within one folder. The join key is the
feature id (column 1, usually an Ensembl id); symbols and feature types go to ``var``
(``gene_symbols``, ``feature_types``). Matrices are usually genes x cells, but some
submitters store them transposed: the layout is decided from the dimensions against the
barcode and feature counts and recorded in the provenance.
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import TYPE_CHECKING

from .. import _open
from .._options import DType, DuplicateGenes
from .._piece import Piece
from .._registry import FormatSpec, register_format
from .._source import Source
from .._unit import ReadOptions, Unit
from ..errors import FormatError
from ..geo import gsm_accession
from . import _tenx

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["group", "read_10x_mtx", "read_unit"]

#: Name endings (after any compression suffix, case-insensitive) of each role.
MATRIX_SUFFIXES = ("matrix.mtx",)
BARCODES_SUFFIXES = ("barcodes.tsv", "barcodes.txt")
FEATURES_SUFFIXES = ("features.tsv", "genes.tsv", "features.txt", "genes.txt")


def _prefix(name: str, suffixes: tuple[str, ...]) -> str | None:
    base = _open.strip_compression_suffix(name)
    lower = base.lower()
    for suffix in suffixes:
        if lower.endswith(suffix):
            return base[: -len(suffix)]
    return None


def _by_prefix(sources: list[Source], suffixes: tuple[str, ...]) -> dict[str, Source]:
    found: dict[str, Source] = {}
    for source in sources:
        prefix = _prefix(source.name, suffixes)
        if prefix is not None:
            found.setdefault(prefix, source)  # sorted input: matrix.mtx wins over matrix.mtx.gz
    return found


def _companion(prefix: str, candidates: dict[str, Source], matrices: dict[str, Source]) -> Source | None:
    """The barcodes/features file of the matrix with ``prefix``.

    The same prefix first; else the one file of the same GSM accession that belongs to no
    other matrix (``GSM1_S1_matrix.mtx.gz`` next to ``GSM1_genes.tsv.gz``); else the one
    file that belongs to no matrix at all (a series-level ``GSE123_features.tsv.gz``).
    """
    if prefix in candidates:
        return candidates[prefix]
    orphans = {p: s for p, s in candidates.items() if p not in matrices}
    gsm = gsm_accession(prefix)
    if gsm is not None:
        same = [s for p, s in orphans.items() if gsm_accession(p) == gsm]
        if len(same) == 1:
            return same[0]
    shared = [s for p, s in orphans.items() if gsm_accession(p) is None or gsm_accession(p) not in _gsms(matrices)]
    return shared[0] if len(shared) == 1 else None


def _gsms(matrices: dict[str, Source]) -> set[str | None]:
    return {gsm_accession(p) for p in matrices}


def group(sources: list[Source]) -> tuple[list[Unit], list[Source]]:
    """Claim 10x triplets by name, folder by folder; return the units and the other sources.

    Every ``*matrix.mtx[.gz]`` is claimed, even when its barcodes or features file is
    missing (reading it then says which file is missing, rather than the matrix failing
    detection). A series-level features file serves every matrix without its own.
    """
    folders: dict[str, list[Source]] = defaultdict(list)
    for source in sources:
        folders[source.parent].append(source)
    units, claimed = [], set()
    for members in folders.values():
        matrices = _by_prefix(members, MATRIX_SUFFIXES)
        if not matrices:
            continue
        barcodes = _by_prefix(members, BARCODES_SUFFIXES)
        features = _by_prefix(members, FEATURES_SUFFIXES)
        for prefix, matrix in matrices.items():
            roles = {"matrix": matrix}
            for role, candidates in (("barcodes", barcodes), ("features", features)):
                companion = _companion(prefix, candidates, matrices)
                if companion is not None:
                    roles[role] = companion
            claimed.update(s.rel for s in roles.values())
            units.append(
                Unit(format="tenx_mtx", sources=roles, name=matrix.rel, sample=_tenx.sample_name(prefix, matrix))
            )
    return units, [s for s in sources if s.rel not in claimed]


def _missing(role: str, matrix: Source) -> FormatError:
    prefix = _prefix(matrix.name, MATRIX_SUFFIXES) or ""
    expected = f"{prefix}barcodes.tsv.gz" if role == "barcodes" else f"{prefix}features.tsv.gz (or genes.tsv)"
    return FormatError(
        f"no {role} file found for this 10x matrix: expected {expected} in the same folder", path=matrix
    )


def read_unit(unit: Unit, options: ReadOptions) -> list[Piece]:
    """Read one 10x triplet into a :class:`~gseio._piece.Piece` of its barcodes."""
    matrix = unit.sources.get("matrix", unit.main)
    barcodes_source = unit.sources.get("barcodes")
    features_source = unit.sources.get("features")
    if barcodes_source is None:
        raise _missing("barcodes", matrix)
    if features_source is None:
        raise _missing("features", matrix)
    return _tenx.read_triplet(matrix, barcodes_source, features_source, options, default="genes_by_cells")


def read_10x_mtx(
    path: str | os.PathLike[str],
    *,
    gene_expression_only: bool = False,
    duplicate_genes: DuplicateGenes = "sum",
    dtype: DType = "auto",
) -> AnnData:
    """Read one 10x Matrix Market triplet (a Cell Ranger ``filtered_feature_bc_matrix`` folder).

    Parameters
    ----------
    path
        The folder holding ``matrix.mtx[.gz]``, ``barcodes.tsv[.gz]`` and
        ``features.tsv[.gz]`` (or ``genes.tsv``), or the matrix file itself (useful when
        several prefixed triplets share a folder). Read a folder of several samples
        with :func:`gseio.read_gse_dir`.
    gene_expression_only
        Keep only features of type ``Gene Expression`` (drops antibody capture, CRISPR
        guides, ...). Files without a feature type column are all kept.
    duplicate_genes
        A feature id repeated in the features file: ``"sum"`` its counts (default),
        keep the ``"first"`` row, or raise (``"error"``).
    dtype
        ``"auto"`` (float32 when every count is an integer below 2**24), ``"float32"``
        or ``"float64"``.

    Returns
    -------
    AnnData, barcodes x features, ``X`` CSR without stored zeros. ``var_names`` are the
    feature ids; ``var`` holds ``gene_symbols`` and ``feature_types`` (Cell Ranger 3+).
    ``obs`` holds ``sample``, ``source_file`` and ``cell`` (the barcode).

    Raises
    ------
    ~gseio.errors.InputError
        A missing barcodes or features file, a barcode given twice or an empty barcode
        line, a matrix whose shape fits neither way against them, a malformed line, an
        entry outside the declared shape, an entry count that differs from the size line,
        or a value that is not a number, negative or non-finite.
    """
    from ..assemble import read

    return read(
        path,
        format="tenx_mtx",
        duplicate_genes=duplicate_genes,
        dtype=dtype,
        gene_expression_only=gene_expression_only,
    )


register_format(
    FormatSpec(
        name="tenx_mtx",
        description="10x Genomics Matrix Market triplet (matrix.mtx + barcodes + features/genes)",
        read_unit=read_unit,
        group=group,
    )
)
