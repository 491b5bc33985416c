"""htseq-count outputs with more than two columns: additional attributes and several samples.

``htseq-count --additional-attr gene_name --add-chromosome-info a.bam b.bam`` writes, without a
header line, one row per feature: the feature id, the additional attribute column(s) (possibly
empty), the chromosome, then one count column per BAM file; its special counters
(``__no_feature``, ``__ambiguous``, ``__too_low_aQual``, ``__not_aligned``,
``__alignment_not_unique``) end the file with empty attribute fields. The classic two-column
output (``gene<TAB>count``) is a per-cell table and is read by ``cell_table``, not here.

Which trailing columns are counts is told by the special rows when the file has them (their
attribute fields are empty, their count fields are not), else by the trailing run of columns
that are numbers on every row (a few failed numbers such as ``NA`` among them are reported by line).
htseq-count writes no header; a first line is taken for one only by the rule of
:mod:`gseio.readers._header` applied to its first and last fields, so ``ENSG...<TAB>5<TAB>NA`` is data
with a bad count, not a header naming cells ``5`` and ``NA``.
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
from ..geo import cell_id_from_name
from . import _quant
from ._decode import decode_name
from ._header import is_bad_number, is_header, is_number

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["read_htseq", "read_unit", "sniff"]

#: Prefix htseq-count gives its special counters (they go to ``obs`` as ``htseq_<name>``).
SPECIAL_PREFIX = "__"
#: Score of the generic headerless gene/attributes/counts layout (a wide table needs a header).
GENERIC_SCORE = 0.6

_INTEGER = re.compile(rb"^\d+$")


def sniff(head: bytes, source: Source) -> float:
    """Score ``head`` as a headerless htseq-count table with three or more columns."""
    if _quant.BINARY_MARK in head[:4096]:
        return 0.0
    lines = [line for line in _quant.head_lines(head) if line.strip()]
    if not lines or _first_is_header(lines[0].split(b"\t", 1)[:1] + lines[0].rsplit(b"\t", 1)[-1:]):
        return 0.0  # htseq-count writes no header: a table with one is a wide table
    rows = [line.split(b"\t") for line in lines]
    width = len(rows[0])
    first = rows[0][0]
    # two columns are cell_table's; '#' lines and STAR's N_* counters belong to other tools
    if width < 3 or first.startswith((b"#", b"N_unmapped")) or first.strip() == b"":
        return 0.0
    bad = 0
    for row in rows:
        if len(row) != width or not row[0].strip() or _INTEGER.match(row[0].strip()):
            return 0.0  # the first field is a feature id, not a number: else it is a plain matrix
        if not _INTEGER.match(row[-1].strip()):
            if not _looks_numeric(row[-1]):
                return 0.0
            bad += 1  # NA, -1, 1,000 on a few lines: the reader names them
    if bad > max(1, len(rows) // 10):
        return 0.0
    specials = [r for r in rows if r[0].startswith(b"__no_feature")]
    if specials and all(f.strip() == b"" for f in specials[0][1:2]):
        return 1.0
    return GENERIC_SCORE


def _text(field: bytes) -> str:
    return decode_name(field.strip())[0]


def _first_is_header(fields: list[bytes]) -> bool:
    """Whether a first line is a header (the counts are the trailing columns: the last one decides)."""
    return is_header(_text(fields[0]), [_text(fields[-1])])


def _looks_numeric(field: bytes) -> bool:
    text = _text(field)
    return is_number(text) or is_bad_number(text)


def _is_numeric(column: pd.Series) -> bool:
    """Numbers, but for a few failed ones (``NA``, ``1,000``) that the count check then names."""
    text = column.str.strip()
    numbers = pd.to_numeric(text, errors="coerce").notna().to_numpy()
    if numbers.all():
        return bool(len(text))
    others = text[~numbers]
    return bool(numbers.any()) and len(others) <= max(1, len(text) // 10) and all(map(is_bad_number, others))


def _n_count_columns(frame: pd.DataFrame, special: np.ndarray) -> int:
    width = frame.shape[1]
    if special.any():
        # special rows leave attribute fields empty and fill count fields
        rows = frame[special]
        n = 0
        for col in range(width - 1, 0, -1):
            if not _is_numeric(rows[col]):
                break
            n += 1
        return n
    n = 0
    for col in range(width - 1, 0, -1):
        if not _is_numeric(frame[col]):
            break
        n += 1
    return n


def _attribute_names(frame: pd.DataFrame, cols: list[int], notes: dict[str, str]) -> dict[int, str]:
    """Name attribute columns: ``chromosome`` and ``gene_name`` when recognisable, else ``attr_<k>``."""
    names: dict[int, str] = {}
    filled = [c for c in cols if (frame[c].str.strip() != "").any()]
    empty = [c for c in cols if c not in filled]
    if empty:
        notes["htseq_attributes"] = f"{len(empty)} attribute column(s) empty on every row: dropped"
    n = len(frame)
    text = [c for c in filled if not _is_numeric(frame[c][frame[c].str.strip() != ""])]
    # --add-chromosome-info appends the chromosome after the additional attributes
    if text and text[-1] == filled[-1] and frame[text[-1]].nunique() <= max(50, n // 20):
        names[text[-1]] = "chromosome"
    for c in text:
        if c not in names and frame[c].nunique() >= 0.5 * n:
            names[c] = "gene_name"
            break
    for k, c in enumerate(cols, start=1):
        if c in filled and c not in names:
            names[c] = f"attr_{k}"
    return names


def read_unit(unit: Unit, options: ReadOptions) -> list[Piece]:
    """Parse one multi-column htseq-count output into a :class:`~gseio._piece.Piece`."""
    source = unit.main
    data = _quant.load_text(source)
    first = _quant.header_fields(data[:65536])
    has_header = bool(first) and is_header(first[0], [first[-1]])
    table = _quant.parse_tsv(source, data, header=has_header)
    frame = table.frame
    if frame.shape[1] < 3:
        raise FormatError(
            f"{frame.shape[1]} columns: a two-column htseq-count output is a per-cell table; read it with "
            "format='cell_table'",
            path=source,
        )
    genes = frame[0].to_numpy(dtype=object)
    special = np.char.startswith(genes.astype(str), SPECIAL_PREFIX)
    n_counts = _n_count_columns(frame, special)
    if n_counts == 0:
        raise FormatError("no count column: the last column holds values that are not numbers", path=source)
    count_cols = list(range(frame.shape[1] - n_counts, frame.shape[1]))
    matrix = np.column_stack([_quant.to_numbers(frame, c, table.first_line, source) for c in count_cols])
    _quant.check_counts(matrix, genes, source, first_line=table.first_line, columns=[c + 1 for c in count_cols])
    notes: dict[str, str] = {}
    attr_cols = list(range(1, count_cols[0]))
    attr_names = _attribute_names(frame[~special], attr_cols, notes)
    is_gene = ~special
    annotations = {name: frame[c].to_numpy(dtype=object)[is_gene] for c, name in attr_names.items()}
    block, keep = _quant.gene_block(
        genes[is_gene],
        source,
        policy=options.duplicate_genes,
        annotations=annotations,
        first_line=table.first_line,
        notes=notes,
    )
    gene_matrix = matrix[is_gene] if keep is None else matrix[is_gene][keep]
    where = None  # the cells are named after the file
    if has_header and table.header is not None:
        cells = [table.header[c] or f"count_{i}" for i, c in enumerate(count_cols, start=1)]
        header_line = table.first_line - 1

        def where(k: int) -> str:
            return f"line {header_line}, column {count_cols[k] + 1}"

        check_unique_cells(cells, source, where)
    elif n_counts == 1:
        cells = [cell_id_from_name(source.name)]
    else:
        stem = cell_id_from_name(source.name)
        cells = [f"{stem}_{i}" for i in range(1, n_counts + 1)]
        notes["htseq_cells"] = f"{n_counts} count columns without a header: named {stem}_1..{stem}_{n_counts}"
    obs = {
        "htseq_" + name[len(SPECIAL_PREFIX) :]: matrix[row]
        for name, row in zip(genes[special], np.flatnonzero(special), strict=True)
    }
    notes["htseq_layout"] = (
        f"{len(attr_cols)} attribute column(s) ({', '.join(attr_names.values()) or 'none kept'}), "
        f"{n_counts} count column(s)"
    )
    return [_quant.make_piece(source, cells, block, gene_matrix, obs=obs, notes=notes, where=where)]


def read_htseq(path: str | os.PathLike[str], *, duplicate_genes: DuplicateGenes = "sum") -> AnnData:
    """Read an htseq-count output with attribute columns and/or several samples.

    Parameters
    ----------
    path
        A headerless htseq-count output with three or more tab-separated columns:
        ``gene [attributes...] count [count...]`` (``--additional-attr``,
        ``--add-chromosome-info``, several BAM files), plain or compressed.
    duplicate_genes
        A gene id repeated in the file: ``"sum"``, keep the ``"first"``, or ``"error"``.

    Returns
    -------
    AnnData with one cell per count column (named after the file, ``<stem>_1``,
    ``<stem>_2``... when there are several) and the file's genes. ``var`` holds the
    attribute columns: ``chromosome`` and ``gene_name`` when recognisable, else
    ``attr_<k>`` (the k-th attribute column); columns empty on every row are dropped.
    ``obs`` holds the special counters as ``htseq_no_feature``, ``htseq_ambiguous``, ....

    Raises
    ------
    ~gseio.errors.InputError
        The file is not such a table, is ragged, names a count column twice (a header
        line), or holds a count that is not a finite number >= 0.
    """
    from ..assemble import read

    return read(path, format="htseq", duplicate_genes=duplicate_genes)


register_format(
    FormatSpec(
        name="htseq",
        description="htseq-count output with attribute columns or several samples (no header)",
        sniff=sniff,
        read_unit=read_unit,
        kind="bulk",
    )
)
