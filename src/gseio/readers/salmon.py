"""salmon ``quant`` outputs: ``quant.sf`` (transcripts) and ``quant.genes.sf`` (genes, with ``--geneMap``).

Both have the header ``Name Length EffectiveLength TPM NumReads``. ``NumReads`` is read as
counts (fractional: reads shared by expectation maximisation); ``Length`` and ``EffectiveLength``
go to ``var`` as ``length`` and ``effective_length``; ``TPM`` is a value of the sample, derived
from the counts, and is not kept.

A salmon output folder with both files is one sample: :func:`group` makes one unit of it and
reads the gene-level file, never both. ``quant.sf`` alone is transcript-level: with ``tx2gene=``
its counts are summed per gene (see :mod:`gseio.readers._tx2gene`), otherwise the transcripts
are read as they are, with a note.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .. import _open
from .._options import DuplicateGenes
from .._piece import Piece
from .._registry import FormatSpec, register_format
from .._source import Source
from .._unit import ReadOptions, Unit
from ..errors import FormatError
from ..geo import cell_id_from_name
from . import _quant, _tx2gene

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["group", "read_salmon", "read_unit", "sniff"]

HEADER = ("Name", "Length", "EffectiveLength", "TPM", "NumReads")
#: File names salmon writes in its output folder, by role.
FOLDER_FILES = {"quant.genes.sf": "genes", "quant.sf": "transcripts"}


def sniff(head: bytes, source: Source) -> float:
    """Score ``head`` as a salmon quant file: 1.0 for its exact header."""
    return 1.0 if tuple(_quant.header_fields(head, limit=5)) == HEADER else 0.0


def _role(source: Source) -> str | None:
    return FOLDER_FILES.get(_open.strip_compression_suffix(source.name).lower())


def group(sources: list[Source]) -> tuple[list[Unit], list[Source]]:
    """One unit per salmon output folder (``quant.genes.sf`` preferred, else ``quant.sf``)."""
    return _quant.folder_units(sources, format="salmon", roles=FOLDER_FILES, preference=("genes", "transcripts"))


def cell_name(source: Source) -> str:
    """The folder name for salmon's generic ``quant*.sf`` names, else the file stem (``Sample_1``)."""
    if _role(source) is not None:
        folder = _quant.folder_name(source)
        return cell_id_from_name(folder) if folder else "quant"
    return cell_id_from_name(_quant.strip_suffix(_open.strip_compression_suffix(source.name), (".sf",)))


def read_unit(unit: Unit, options: ReadOptions) -> list[Piece]:
    """Parse one salmon quant file into a one-cell :class:`~gseio._piece.Piece`."""
    source = unit.main
    data = _quant.load_text(source)
    header = tuple(_quant.header_fields(data[:65536])[:5])
    if header != HEADER:
        raise FormatError(f"the header is {list(header)}, not salmon's {' '.join(HEADER)}", path=source)
    table = _quant.parse_tsv(source, data, header=True, numeric=(1, 2, 3, 4))
    frame = table.frame
    ids = frame[0].to_numpy(dtype=object)
    counts = frame[4].to_numpy(np.float64)
    lengths = {"length": frame[1].to_numpy(np.float64), "effective_length": frame[2].to_numpy(np.float64)}
    _quant.check_counts(counts[:, None], ids, source, first_line=table.first_line, what="NumReads")
    _quant.check_counts(
        np.column_stack(list(lengths.values())), ids, source, first_line=table.first_line, what="length"
    )
    notes = {}
    if "transcripts" in unit.sources and unit.sources["transcripts"] is not source:
        notes["salmon_folder"] = (
            f"read {source.rel} (genes); {unit.sources['transcripts'].rel} not read (same sample)"
        )
    if _role(source) == "genes":
        notes["salmon_level"] = "quant.genes.sf: gene level (salmon --geneMap)"
        block, keep = _quant.gene_block(
            ids, source, policy=options.duplicate_genes, annotations=lengths, first_line=table.first_line,
            notes=notes,
        )  # fmt: skip
        piece = _quant.make_piece(
            source, [cell_name(source)], block, counts if keep is None else counts[keep], notes=notes
        )
        return [piece]
    piece = _tx2gene.transcript_piece(
        source,
        cell_name(source),
        ids,
        counts,
        lengths,
        options,
        tool="salmon",
        first_line=table.first_line,
        notes=notes,
    )
    return [piece]


def read_salmon(
    path: str | os.PathLike[str],
    *,
    tx2gene: str | os.PathLike[str] | None = None,
    duplicate_genes: DuplicateGenes = "sum",
) -> AnnData:
    """Read a salmon ``quant.sf`` / ``quant.genes.sf`` (or its output folder) into a one-cell AnnData.

    Parameters
    ----------
    path
        ``quant.sf``, ``quant.genes.sf`` (plain or compressed), any file with salmon's
        header (``Sample_1.sf``), or the folder holding them.
    tx2gene
        A transcript-to-gene table (2+ columns, TSV/CSV, header optional) or a GTF: the
        transcripts' ``NumReads`` are summed per gene. Not used for ``quant.genes.sf``.
    duplicate_genes
        An id repeated in the file: ``"sum"``, keep the ``"first"``, or ``"error"``.

    Returns
    -------
    AnnData with one cell named after the output folder (``WT_REP1`` for ``WT_REP1/quant.sf``)
    or the file stem; ``X`` holds ``NumReads``. ``var`` holds ``length`` and
    ``effective_length``, except after summarising transcripts to genes.

    Raises
    ------
    ~gseio.errors.InputError
        Not salmon output, ragged rows, a count that is not a finite number >= 0, or no
        transcript found in ``tx2gene``.
    """
    from ..assemble import read

    options = {} if tx2gene is None else {"tx2gene": Path(tx2gene)}
    return read(path, format="salmon", duplicate_genes=duplicate_genes, **options)


register_format(
    FormatSpec(
        name="salmon",
        description="salmon quant.sf / quant.genes.sf (NumReads)",
        sniff=sniff,
        read_unit=read_unit,
        group=group,
        kind="bulk",
    )
)
