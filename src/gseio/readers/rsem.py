"""RSEM ``rsem-calculate-expression`` results: ``<sample>.genes.results`` and ``<sample>.isoforms.results``.

Both are tab-separated with a header: ``gene_id transcript_id(s) length effective_length
expected_count TPM FPKM`` for genes, ``transcript_id gene_id length effective_length
expected_count TPM FPKM IsoPct`` for isoforms (``--calc-pme``/``--calc-ci`` add columns
after these). ``expected_count`` is read as counts; it is fractional (reads are shared between
genes by expectation maximisation) and is still a count, not a normalised value.

``length`` and ``effective_length`` go to ``var`` because downstream tools need them (TPM from
counts, tximport-style offsets); ``TPM`` and ``FPKM`` do not: they are values of the sample, not
properties of the gene, and ``X`` already holds the counts they derive from. Lengths of a gene
in ``genes.results`` are abundance-weighted means over its isoforms, so they vary a little
between samples; ``var`` keeps the value of the first sample read.

A sample's ``genes.results`` and ``isoforms.results`` side by side form one unit read at gene
level: reading both would count the sample twice.
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import TYPE_CHECKING

import numpy as np

from .._open import strip_compression_suffix
from .._options import DuplicateGenes
from .._piece import Piece
from .._registry import FormatSpec, register_format
from .._source import Source
from .._unit import ReadOptions, Unit
from ..errors import FormatError
from ..geo import cell_id_from_name, sample_of
from . import _quant

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["group", "read_rsem", "read_unit", "sniff"]

GENES_HEADER = ("gene_id", "transcript_id(s)", "length", "effective_length", "expected_count")
ISOFORMS_HEADER = ("transcript_id", "gene_id", "length", "effective_length", "expected_count")
SUFFIXES = (".genes.results", ".isoforms.results")


def sniff(head: bytes, source: Source) -> float:
    """Score ``head`` as an RSEM results file: 1.0 for its exact header."""
    fields = tuple(_quant.header_fields(head, limit=5))
    return 1.0 if fields in (GENES_HEADER, ISOFORMS_HEADER) else 0.0


def _prefix(name: str) -> tuple[str, str] | None:
    """``(sample prefix, "genes" | "isoforms")`` of an RSEM file name, else ``None``."""
    stem = strip_compression_suffix(name)
    for suffix in SUFFIXES:
        if stem.endswith(suffix):
            return stem[: -len(suffix)], suffix.split(".")[1]
    return None


def cell_name(source: Source) -> str:
    """``ERR188021`` for ``ERR188021.genes.results.gz`` (GSM accession dropped), else the folder name."""
    parsed = _prefix(source.name)
    prefix = parsed[0] if parsed else strip_compression_suffix(source.name)
    return cell_id_from_name(prefix) if prefix else (_quant.folder_name(source) or "rsem")


def group(sources: list[Source]) -> tuple[list[Unit], list[Source]]:
    """Pair a sample's ``genes.results`` with its ``isoforms.results`` (read at gene level only)."""
    found: dict[tuple[str, str], dict[str, Source]] = defaultdict(dict)
    for source in sources:
        if (parsed := _prefix(source.name)) is not None:
            found[(source.parent, parsed[0])][parsed[1]] = source
    units, claimed = [], set()
    for (_, prefix), files in found.items():
        if len(files) == 2:
            genes = files["genes"]
            units.append(
                Unit(
                    format="rsem",
                    sources={"data": genes, "isoforms": files["isoforms"]},
                    name=genes.rel,
                    sample=sample_of(prefix) if prefix else sample_of(genes.name),
                )
            )
            claimed.update(s.rel for s in files.values())
    return units, [s for s in sources if s.rel not in claimed]


def read_unit(unit: Unit, options: ReadOptions) -> list[Piece]:
    """Parse one RSEM results file into a one-cell :class:`~gseio._piece.Piece`."""
    source = unit.main
    data = _quant.load_text(source)
    header = tuple(_quant.header_fields(data[:65536]))
    if header[:5] not in (GENES_HEADER, ISOFORMS_HEADER):
        raise FormatError(
            f"the header starts {list(header[:5])}, not RSEM's {' '.join(GENES_HEADER)} "
            f"(or {' '.join(ISOFORMS_HEADER)})",
            path=source,
        )
    table = _quant.parse_tsv(source, data, header=True, numeric=(2, 3, 4))
    frame = table.frame
    ids = frame[0].to_numpy(dtype=object)
    counts = frame[4].to_numpy(dtype=np.float64)
    lengths = frame[[2, 3]].to_numpy(dtype=np.float64)
    _quant.check_counts(counts[:, None], ids, source, first_line=table.first_line, what="expected_count")
    _quant.check_counts(lengths, ids, source, first_line=table.first_line, what="length")
    annotations = {"length": lengths[:, 0], "effective_length": lengths[:, 1]}
    notes = {}
    if header[:5] == ISOFORMS_HEADER:
        annotations["gene_id"] = frame[1].to_numpy(dtype=object)
        notes["rsem_level"] = (
            "isoforms.results: read at transcript level (var['gene_id'] gives each transcript's gene); "
            "the sample's genes.results holds the gene-level counts"
        )
    elif "isoforms" in unit.sources:
        notes["rsem_level"] = f"genes.results read; {unit.sources['isoforms'].rel} not read (same sample)"
    block, keep = _quant.gene_block(
        ids, source, policy=options.duplicate_genes, annotations=annotations, first_line=table.first_line,
        notes=notes,
    )  # fmt: skip
    values = counts if keep is None else counts[keep]
    return [_quant.make_piece(source, [cell_name(source)], block, values, notes=notes)]


def read_rsem(path: str | os.PathLike[str], *, duplicate_genes: DuplicateGenes = "sum") -> AnnData:
    """Read an RSEM ``*.genes.results`` (or ``*.isoforms.results``) into a one-cell AnnData.

    Parameters
    ----------
    path
        The results file, plain or compressed.
    duplicate_genes
        An id repeated in the file: ``"sum"``, keep the ``"first"``, or ``"error"``.

    Returns
    -------
    AnnData with one cell named after the file (``ERR188021`` for
    ``ERR188021.genes.results.gz``); ``X`` holds ``expected_count`` (fractional counts);
    ``var`` holds ``length`` and ``effective_length`` (and ``gene_id`` for isoforms).

    Raises
    ------
    ~gseio.errors.InputError
        Not an RSEM results file, ragged rows, or a count or length that is not a finite
        number >= 0.
    """
    from ..assemble import read

    return read(path, format="rsem", duplicate_genes=duplicate_genes)


register_format(
    FormatSpec(
        name="rsem",
        description="RSEM genes.results / isoforms.results (expected counts)",
        sniff=sniff,
        read_unit=read_unit,
        group=group,
        kind="bulk",
    )
)
