"""Units (what one reader call consumes) and the options every reader receives."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ._open import DEFAULT_MAX_EXPANSION, check_ratio
from ._options import DuplicateGenes
from ._source import Source

Orientation = Literal["auto", "genes_by_cells", "cells_by_genes"]
Strandedness = Literal["auto", "unstranded", "forward", "reverse"]


@dataclass(frozen=True, slots=True)
class Unit:
    """One reader call's worth of input: a single file, or several files that belong together.

    Attributes
    ----------
    format
        The format's name (see :func:`gseio.list_formats`).
    sources
        The unit's files by role: ``{"data": ...}`` for single-file units; e.g.
        ``{"matrix": ..., "barcodes": ..., "features": ...}`` for a 10x triplet.
    name
        How the unit is named to users and in ``obs["source_file"]`` (the main file's
        path relative to the input).
    sample
        The sample its cells belong to (``obs["sample"]``): the GSM accession when the
        file names carry one, else a prefix or stem the reader chose.
    """

    format: str
    sources: dict[str, Source]
    name: str
    sample: str

    @property
    def main_role(self) -> str:
        """The role of the unit's main file: ``"data"``, else ``"matrix"``, else the first."""
        for role in ("data", "matrix"):
            if role in self.sources:
                return role
        return next(iter(self.sources))

    @property
    def main(self) -> Source:
        """The unit's main file (see :attr:`main_role`)."""
        return self.sources[self.main_role]


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """Options every reader receives; each uses those that concern its format.

    Attributes
    ----------
    duplicate_genes
        A gene name repeated inside one unit: ``"sum"``, keep the ``"first"``, or ``"error"``.
    orientation
        Wide tables: which axis holds genes; ``"auto"`` decides from the labels.
    gene_expression_only
        10x: keep only features of type ``Gene Expression``.
    genome
        10x HDF5 v2 with several genomes: which one (``None``: all).
    strandedness
        STAR ``ReadsPerGene.out.tab``: which count column; ``"auto"`` uses the usual rule.
    tx2gene
        A transcript-to-gene table or a GTF, to summarise transcript-level quantifications.
    max_expansion
        Refuse a compressed file that expands to more than this many times its size (and to more
        than 64 MiB) as a decompression bomb; None (CLI: none) lifts the limit. Default 1000: about
        twice what the most compressible real count tables reach (gzip cannot pass ~1030).
    cache
        Internal: gene columns seen before in this build (shared across threads).
    """

    duplicate_genes: DuplicateGenes = "sum"
    orientation: Orientation = "auto"
    gene_expression_only: bool = False
    genome: str | None = None
    strandedness: Strandedness = "auto"
    tx2gene: Path | None = None
    max_expansion: float | None = DEFAULT_MAX_EXPANSION
    cache: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        # checked here, before any file is read; the command line passes it as text ("500", "none")
        object.__setattr__(self, "max_expansion", check_ratio(self.max_expansion))
