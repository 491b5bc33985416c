"""featureCounts (Subread) count tables, and its ``.summary`` files recognised as QC.

``featureCounts -a genes.gtf -o counts.txt a.bam b.bam`` writes a ``# Program:featureCounts
v2.0.0; Command:...`` line, the header ``Geneid Chr Start End Strand Length`` followed by one
column per input, named by the path given on the command line (``../STAR/SRR014335-Aligned.out.sam``),
then one row per meta-feature. A gene of several exons has ``;``-joined ``Chr``/``Start``/
``End``/``Strand`` fields (``IV;IV``, ``1802;2100``). Cells are named after the input path
without its folders, extension and the usual aligner suffixes (``SRR014335``); the original
names are kept in the notes. The companion ``counts.txt.summary`` (``Status`` x inputs,
``Assigned``/``Unassigned_*`` rows) is recognised so it is listed as ignored, not read as genes.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._options import DuplicateGenes
from .._piece import Piece, check_unique_cells
from .._registry import FormatSpec, register_format
from .._source import Source
from .._unit import ReadOptions, Unit
from ..errors import FormatError
from . import _quant

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["clean_sample_name", "read_featurecounts", "read_unit", "sniff", "sniff_summary"]

#: The annotation columns featureCounts writes before the count columns.
ANNOTATION_COLUMNS = ("Geneid", "Chr", "Start", "End", "Strand", "Length")
#: Signature of the first line of a counts file.
PROGRAM_LINE = b"# Program:featureCounts"

_INPUT_EXTENSIONS = re.compile(r"\.(bam|sam|cram)$", re.IGNORECASE)
# suffixes aligners and BAM tools add to a sample's file name; removed one after another
_ALIGNER_SUFFIX = re.compile(
    r"[._-]?(Aligned(\.sortedByCoord|\.toTranscriptome)?\.out|sorted(ByCoord)?|sort|markdup(ped)?|"
    r"MarkDuplicates|dedup(ed|licated)?|nsorted|primary|uniq(ue)?|filtered|aligned|mapped)$",
    re.IGNORECASE,
)


def clean_sample_name(path: str) -> str:
    """The sample name an input path implies.

    >>> clean_sample_name("../STAR/SRR014335-Aligned.out.sam")
    'SRR014335'
    >>> clean_sample_name("/data/WT_1.Aligned.sortedByCoord.out.markdup.bam")
    'WT_1'
    """
    name = path.replace("\\", "/").rsplit("/", 1)[-1]
    name = _INPUT_EXTENSIONS.sub("", name)
    while (shorter := _ALIGNER_SUFFIX.sub("", name)) != name and shorter:
        name = shorter
    return name


def sniff(head: bytes, source: Source) -> float:
    """Score ``head`` as a featureCounts table: 1.0 for its program line or exact header."""
    if head.startswith(PROGRAM_LINE):
        return 1.0
    fields = _quant.header_fields(head, skip_comments=True, limit=7)
    return 1.0 if tuple(fields[:6]) == ANNOTATION_COLUMNS and len(fields) > 6 else 0.0


def sniff_summary(head: bytes, source: Source) -> float:
    """Score ``head`` as a featureCounts ``.summary`` (``Status`` header, ``Assigned`` rows)."""
    lines = _quant.head_lines(head, 5)
    if len(lines) < 2 or not lines[0].startswith(b"Status\t"):
        return 0.0
    return 1.0 if lines[1].startswith((b"Assigned\t", b"Unassigned_")) else 0.0


def _cell_names(inputs: list[str], notes: dict[str, str], source: Source, header_line: int) -> list[str]:
    # two columns for one input: which is the sample? (featureCounts never writes that)
    check_unique_cells(inputs, source, lambda k: f"line {header_line}, column {len(ANNOTATION_COLUMNS) + k + 1}")
    cleaned = [clean_sample_name(n) for n in inputs]
    if len(set(cleaned)) < len(cleaned):  # the suffixes told samples apart: keep base names
        cleaned = [n.replace("\\", "/").rsplit("/", 1)[-1] for n in inputs]
    if len(set(cleaned)) < len(cleaned):
        cleaned = list(inputs)
    if cleaned != inputs:
        notes["featurecounts_inputs"] = "; ".join(f"{c} <- {o}" for c, o in zip(cleaned, inputs, strict=True))
    return cleaned


def _collapse(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per-gene location from featureCounts' per-exon ``;``-joined fields."""
    out: dict[str, np.ndarray] = {}
    chrom = frame[1].str.split(";").explode()
    unique = chrom.groupby(level=0, sort=False).unique()
    out["chromosome"] = np.array([";".join(u) for u in unique], dtype=object)
    for col, name, how in ((2, "start", "min"), (3, "end", "max")):
        parts = pd.to_numeric(frame[col].str.split(";").explode(), errors="coerce")
        values = parts.groupby(level=0, sort=False).agg(how)
        out[name] = values.to_numpy(dtype=np.int64) if values.notna().all() else values.to_numpy()
    strand = frame[4].str.split(";").explode().groupby(level=0, sort=False).unique()
    out["strand"] = np.array([";".join(u) for u in strand], dtype=object)
    return out


def read_unit(unit: Unit, options: ReadOptions) -> list[Piece]:
    """Parse one featureCounts table into a :class:`~gseio._piece.Piece` of its samples."""
    source = unit.main
    data = _quant.load_text(source)
    header = _quant.header_fields(data[: 1 << 20], skip_comments=True)
    if tuple(header[:6]) != ANNOTATION_COLUMNS:
        raise FormatError(
            f"the header starts {header[:6]}, not {' '.join(ANNOTATION_COLUMNS)}: not a featureCounts table",
            path=source,
        )
    if len(header) == 6:
        raise FormatError("the table has no count column (only Geneid Chr Start End Strand Length)", path=source)
    numeric = list(range(5, len(header)))
    table = _quant.parse_tsv(source, data, header=True, skip_comments=True, numeric=numeric)
    frame = table.frame
    genes = frame[0].to_numpy(dtype=object)
    matrix = frame[numeric[1:]].to_numpy(dtype=np.float64)
    _quant.check_counts(matrix, genes, source, first_line=table.first_line, columns=[c + 1 for c in numeric[1:]])
    lengths = frame[5].to_numpy(dtype=np.float64)
    _quant.check_counts(lengths[:, None], genes, source, first_line=table.first_line, what="Length")
    annotations = {**_collapse(frame), "length": lengths}
    notes: dict[str, str] = {}
    block, keep = _quant.gene_block(
        genes, source, policy=options.duplicate_genes, annotations=annotations, first_line=table.first_line,
        notes=notes,
    )  # fmt: skip
    header_line = table.first_line - 1
    cells = _cell_names(header[6:], notes, source, header_line)

    def where(k: int) -> str:
        return f"line {header_line}, column {len(ANNOTATION_COLUMNS) + k + 1}"

    matrix = matrix if keep is None else matrix[keep]
    return [_quant.make_piece(source, cells, block, matrix, notes=notes, where=where)]


def _read_summary(unit: Unit, options: ReadOptions) -> list[Piece]:
    raise FormatError(
        "a featureCounts .summary holds assignment counters (Assigned, Unassigned_*), not gene counts; "
        "read the counts table it accompanies",
        path=unit.main,
    )


def read_featurecounts(path: str | os.PathLike[str], *, duplicate_genes: DuplicateGenes = "sum") -> AnnData:
    """Read a featureCounts count table (one or many samples).

    Parameters
    ----------
    path
        A featureCounts output (``-o counts.txt``), plain or compressed; not its ``.summary``.
    duplicate_genes
        A gene id repeated in the file: ``"sum"``, keep the ``"first"``, or ``"error"``.

    Returns
    -------
    AnnData with one cell per input column, named after the input path without folders,
    extension and aligner suffixes (``../STAR/SRR014335-Aligned.out.sam`` -> ``SRR014335``;
    the original names are in ``uns["gseio"]["notes"]``). ``var`` holds ``length``
    (featureCounts' ``Length``: the union of the gene's exons), ``chromosome``, ``start``
    (lowest exon start), ``end`` (highest exon end) and ``strand`` (``;``-joined when a
    gene's exons disagree).

    Raises
    ------
    ~gseio.errors.InputError
        Not a featureCounts table, ragged rows, an input column given twice, or a count that
        is not a finite number >= 0.
    """
    from ..assemble import read

    return read(path, format="featurecounts", duplicate_genes=duplicate_genes)


register_format(
    FormatSpec(
        name="featurecounts",
        description="featureCounts (Subread) count table, one or many samples",
        sniff=sniff,
        read_unit=read_unit,
        kind="bulk",
    )
)
register_format(
    FormatSpec(
        name="featurecounts_summary",
        description="featureCounts .summary (read assignment counters)",
        sniff=sniff_summary,
        read_unit=_read_summary,
        kind="qc",
    )
)
