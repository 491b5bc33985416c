"""STAR ``--quantMode GeneCounts`` outputs (``<prefix>ReadsPerGene.out.tab``).

The file has no header and four columns: the gene id, then the counts for an unstranded
library, for reads on the gene's strand (read 1 sense: ``htseq-count -s yes``) and for reads
on the opposite strand (``htseq-count -s reverse``). Four leading rows, ``N_unmapped``,
``N_multimapping``, ``N_noFeature`` and ``N_ambiguous``, are STAR's counters: they go to
``obs`` as ``star_N_unmapped``, ... (values of the chosen column).

Strandedness ``"auto"`` follows the rule RSeQC's ``infer_experiment.py`` results are read with
(and nf-core/rnaseq's ``stranded_threshold`` of 0.8): with ``f`` the share of column 3 in the
gene-count totals of columns 3 and 4, a library is forward-stranded when ``f >= 0.8`` (column
3 at least 4x column 4), reverse-stranded when ``f <= 0.2``, and unstranded otherwise (an
unstranded library splits reads about evenly, ``f`` near 0.5). The choice and the totals are
recorded in the notes.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, get_args

import numpy as np

from .._open import strip_compression_suffix
from .._options import DuplicateGenes
from .._piece import Piece
from .._registry import FormatSpec, register_format
from .._source import Source
from .._unit import ReadOptions, Strandedness, Unit
from ..errors import FormatError
from ..geo import cell_id_from_name
from . import _quant

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["read_star", "read_unit", "sniff"]

#: STAR's counter rows, in file order.
COUNTERS = ("N_unmapped", "N_multimapping", "N_noFeature", "N_ambiguous")
#: Suffix STAR gives the file after the ``--outFileNamePrefix``.
SUFFIX = "ReadsPerGene.out.tab"
#: Share of the stranded totals above which a library is called stranded (``1 - STRANDED_SHARE`` below).
STRANDED_SHARE = 0.8
#: Count column (0-based) for each strandedness.
COLUMN = {"unstranded": 1, "forward": 2, "reverse": 3}


def sniff(head: bytes, source: Source) -> float:
    """Score ``head`` as STAR ``ReadsPerGene.out.tab``: 1.0 for its leading ``N_*`` counter rows."""
    lines = _quant.head_lines(head, 6)
    if len(lines) < 4:
        return 0.0
    rows = [line.split(b"\t") for line in lines[:4]]
    if [r[0] for r in rows] == [c.encode() for c in COUNTERS] and all(len(r) == 4 for r in rows):
        return 1.0
    return 0.0


def cell_name(source: Source) -> str:
    """The prefix before ``ReadsPerGene.out.tab`` (GSM accession dropped), else the folder name."""
    name = strip_compression_suffix(source.name)
    prefix = name[: -len(SUFFIX)] if name.endswith(SUFFIX) else name
    prefix = prefix.rstrip("._-")
    if not prefix:
        return _quant.folder_name(source) or "ReadsPerGene"
    return cell_id_from_name(prefix) if name.endswith(SUFFIX) else cell_id_from_name(name)


def choose_column(forward: float, reverse: float) -> tuple[str, str]:
    """The strandedness the gene-count totals of columns 3 and 4 imply, and why."""
    total = forward + reverse
    share = forward / total if total > 0 else 0.5
    if share >= STRANDED_SHARE:
        choice = "forward"
    elif share <= 1 - STRANDED_SHARE:
        choice = "reverse"
    else:
        choice = "unstranded"
    why = (
        f"auto: column 3 (forward) total {forward:g}, column 4 (reverse) total {reverse:g}, forward share "
        f"{share:.3f}; stranded when the share is >= {STRANDED_SHARE} or <= {1 - STRANDED_SHARE:.1f}: {choice}"
    )
    return choice, why


def read_unit(unit: Unit, options: ReadOptions) -> list[Piece]:
    """Parse one ``ReadsPerGene.out.tab`` into a one-cell :class:`~gseio._piece.Piece`."""
    source = unit.main
    strandedness = options.strandedness
    if strandedness not in get_args(Strandedness):
        raise ValueError(
            f"strandedness must be one of {', '.join(map(repr, get_args(Strandedness)))}, not {strandedness!r}"
        )
    table = _quant.parse_tsv(source, _quant.load_text(source), header=False, numeric=(1, 2, 3), n_fields=4)
    frame = table.frame
    names = frame[0].to_numpy(dtype=object)
    matrix = frame[[1, 2, 3]].to_numpy(dtype=np.float64)
    _quant.check_counts(matrix, names, source, first_line=table.first_line, columns=(2, 3, 4))
    counter = np.isin(names, COUNTERS)
    if not counter[: len(COUNTERS)].all():
        raise FormatError(
            f"the first rows are {', '.join(map(str, names[:4]))}, not STAR's {', '.join(COUNTERS)}", path=source
        )
    is_gene = ~counter
    genes = matrix[is_gene]
    totals = genes.sum(axis=0)
    if strandedness == "auto":
        strandedness, why = choose_column(float(totals[1]), float(totals[2]))
    else:
        why = f"strandedness={strandedness!r} given (column totals {', '.join(f'{t:g}' for t in totals)})"
    col = COLUMN[strandedness] - 1
    notes = {"star_strandedness": f"{strandedness} (column {COLUMN[strandedness] + 1}); {why}"}
    gene_lines = table.first_line + np.flatnonzero(is_gene)  # STAR's counters come first
    block, keep = _quant.gene_block(
        names[is_gene], source, policy=options.duplicate_genes, where=lambda k: f"line {gene_lines[k]}",
        notes=notes,
    )  # fmt: skip
    values = genes[:, col] if keep is None else genes[keep, col]
    obs = {
        f"star_{name}": matrix[row, col : col + 1]
        for name, row in zip(names[counter], np.flatnonzero(counter), strict=True)
    }
    return [_quant.make_piece(source, [cell_name(source)], block, values, obs=obs, notes=notes)]


def read_star(
    path: str | os.PathLike[str],
    *,
    strandedness: Strandedness = "auto",
    duplicate_genes: DuplicateGenes = "sum",
) -> AnnData:
    """Read a STAR ``ReadsPerGene.out.tab`` into a one-cell AnnData.

    Parameters
    ----------
    path
        The file, plain or compressed.
    strandedness
        Which count column: ``"unstranded"`` (column 2), ``"forward"`` (column 3,
        ``htseq-count -s yes``), ``"reverse"`` (column 4, ``-s reverse``), or ``"auto"``:
        forward or reverse when that column holds at least 80% of the two stranded
        columns' gene counts, else unstranded (see the module notes).
    duplicate_genes
        A gene id repeated in the file: ``"sum"``, keep the ``"first"``, or ``"error"``.

    Returns
    -------
    AnnData with one cell named after the file's prefix (``ERR458837_subsamp_1`` for
    ``ERR458837_subsamp_1ReadsPerGene.out.tab``); ``obs`` holds ``star_N_unmapped``,
    ``star_N_multimapping``, ``star_N_noFeature`` and ``star_N_ambiguous`` of the chosen
    column; the choice and the column totals are in ``uns["gseio"]["notes"]``.

    Raises
    ------
    ~gseio.errors.InputError
        Not a STAR gene-count table, ragged rows, or a count that is not a finite number >= 0.
    """
    from ..assemble import read

    return read(path, format="star", strandedness=strandedness, duplicate_genes=duplicate_genes)


register_format(
    FormatSpec(
        name="star",
        description="STAR --quantMode GeneCounts ReadsPerGene.out.tab",
        sniff=sniff,
        read_unit=read_unit,
        kind="bulk",
    )
)
