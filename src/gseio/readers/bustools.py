"""kallisto | bustools count output: ``<name>.mtx`` + ``<name>.barcodes.txt`` + ``<name>.genes.txt``.

``bustools count`` (and ``kb count``) writes a Matrix Market file of **cells x genes**
(the transpose of 10x's layout) with one barcode and one gene id per line in the two
companion files, all sharing a prefix: ``cells_x_genes.*``, or ``spliced.*`` and
``unspliced.*`` for RNA velocity. The layout is still checked against the barcode and
gene counts, as for 10x. Gene ids (often versioned Ensembl ids) are the join key.
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

__all__ = ["group", "read_bustools", "read_unit"]

MATRIX_SUFFIX = ".mtx"
BARCODES_SUFFIX = ".barcodes.txt"
GENES_SUFFIX = ".genes.txt"


def _stem(name: str, suffix: str) -> str | None:
    base = _open.strip_compression_suffix(name)
    if base.lower().endswith(suffix) and len(base) > len(suffix):
        return base[: -len(suffix)]
    return None


def group(sources: list[Source]) -> tuple[list[Unit], list[Source]]:
    """Claim ``<name>.mtx`` files that have a ``<name>.barcodes.txt`` or ``<name>.genes.txt`` beside them."""
    by_key: dict[tuple[str, str], dict[str, Source]] = defaultdict(dict)
    for source in sources:
        for role, suffix in (("matrix", MATRIX_SUFFIX), ("barcodes", BARCODES_SUFFIX), ("genes", GENES_SUFFIX)):
            stem = _stem(source.name, suffix)
            if stem is not None:
                by_key[(source.parent, stem)].setdefault(role, source)
    units, claimed = [], set()
    for (_, stem), roles in by_key.items():
        # a bare .mtx is no bustools output (10x and other tools write .mtx files too)
        if "matrix" not in roles or len(roles) == 1:
            continue
        matrix = roles["matrix"]
        claimed.update(s.rel for s in roles.values())
        units.append(Unit(format="bustools", sources=dict(roles), name=matrix.rel, sample=_sample(stem, matrix)))
    return units, [s for s in sources if s.rel not in claimed]


def _sample(stem: str, matrix: Source) -> str:
    """The GSM accession of the name or of a folder, else the folder and the name.

    bustools names are generic (``cells_x_genes``, ``spliced``): alone they would give
    every sample of a series the same name.
    """
    gsm = gsm_accession(stem) or _tenx.folder_accession(matrix)
    return gsm or (f"{matrix.parent}/{stem}" if matrix.parent else stem)


def _parse_genes(data: bytes, source: Source) -> _tenx.Features:
    features = _tenx.parse_features(data, source)
    return _tenx.Features(features.ids)  # one id per line; anything after a tab is not a symbol


def read_unit(unit: Unit, options: ReadOptions) -> list[Piece]:
    """Read one bustools count matrix into a :class:`~gseio._piece.Piece` of its barcodes."""
    matrix = unit.sources.get("matrix", unit.main)
    for role, suffix in (("barcodes", BARCODES_SUFFIX), ("genes", GENES_SUFFIX)):
        if role not in unit.sources:
            stem = _stem(matrix.name, MATRIX_SUFFIX) or matrix.name
            raise FormatError(
                f"no {role} file found for this bustools matrix: expected {stem}{suffix} in the same folder",
                path=matrix,
            )
    barcodes_source, genes_source = unit.sources["barcodes"], unit.sources["genes"]
    return _tenx.read_triplet(
        matrix, barcodes_source, genes_source, options, default="cells_by_genes", parse=_parse_genes
    )


def read_bustools(
    path: str | os.PathLike[str],
    *,
    duplicate_genes: DuplicateGenes = "sum",
    dtype: DType = "auto",
) -> AnnData:
    """Read one kallisto | bustools count matrix.

    Parameters
    ----------
    path
        The ``<name>.mtx`` file (its ``<name>.barcodes.txt`` and ``<name>.genes.txt``
        are found beside it), or a folder holding one such triplet.
    duplicate_genes
        A gene id repeated: ``"sum"`` its counts (default), keep the ``"first"``, or
        raise (``"error"``).
    dtype
        ``"auto"`` (float32 when every count is an integer below 2**24), ``"float32"``
        or ``"float64"``.

    Returns
    -------
    AnnData, barcodes x genes, ``X`` CSR without stored zeros; ``var_names`` are the
    gene ids. ``obs`` holds ``sample``, ``source_file`` and ``cell`` (the barcode).

    Raises
    ------
    ~gseio.errors.InputError
        A missing companion file, a barcode given twice, a matrix whose shape fits neither
        way against the barcodes and genes, a malformed Matrix Market body or a negative count.
    """
    from ..assemble import read

    return read(path, format="bustools", duplicate_genes=duplicate_genes, dtype=dtype)


register_format(
    FormatSpec(
        name="bustools",
        description="kallisto | bustools count matrix (<name>.mtx + .barcodes.txt + .genes.txt, cells x genes)",
        read_unit=read_unit,
        group=group,
    )
)
