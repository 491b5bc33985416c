"""Wide count tables: a header line, one label column, then one column per cell (or per gene).

The commonest "processed data" layout on GEO: ``GSE..._counts.txt.gz`` with genes as rows
and cells (or samples) as columns, sometimes transposed. Tab-, comma- or
whitespace-separated, compressed or not, quoted fields (R's ``write.csv``), CRLF, a byte-order
mark and ``#`` comment lines are all accepted. The header's first field (the corner) may be
empty, even two of them (htseq-count-barcodes), or missing altogether (R's
``write.table``: the header is one field shorter than the rows).

Orientation
    Decided from the labels (:mod:`gseio.readers._labels`): Ensembl/FlyBase/yeast ids, ERCC
    spike-ins and htseq counters mark genes; barcodes, plate wells and GSM/SRR accessions
    mark cells. The decision and its reason go to the provenance notes; undecidable tables
    are read genes x cells. ``orientation="genes_by_cells"``/``"cells_by_genes"`` overrides.
Annotation columns
    Columns named like ``gene_name``, ``Description``, ``Chr``, ``Start``, ``End``,
    ``Strand``, ``Length`` (featureCounts) or unnamed text columns before the counts are
    per-gene annotations: they go to ``var`` (``gene_symbols``, ``chromosome``, ``length``...),
    never to cells. Any other text column means the file is not a count table (a sample sheet).
Values
    Counts, unless the file name, the header or a comment line names a normalisation
    (``TPM``, ``FPKM``, ``RPKM``, ``CPM``, ``normalized``/``normalised``, optionally with a
    ``log``/``log2`` prefix): then the piece is marked ``values="normalized"``. The values
    themselves do not decide: fractional "counts" are common (tximport, RSEM).

Headerless multi-column tables are htseq-count output and left to that reader.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, get_args

from .. import _open
from .._blocks import line_blocks
from .._options import DType, DuplicateGenes
from .._piece import Piece
from .._registry import FormatSpec, register_format
from .._source import Source
from .._unit import Orientation, ReadOptions, Unit
from ..errors import FormatError
from ..geo import cell_id_from_name
from . import _names
from ._header import is_header
from ._labels import CELL_HEADERS, GENE_HEADERS, decide_orientation
from ._table import (
    Layout,
    all_numbers,
    find_layout,
    is_missing,
    is_number,
    parse_table,
    plan_columns,
    sample_rows,
)
from ._table_piece import build_piece
from .cell_table import GENERIC_VALUE_HEADERS

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["normalised_marker", "read_unit", "read_wide_table", "sniff"]

_NORMALISED = re.compile(
    r"(?<![a-z])(log\d*[_.-]?)?(tpm|fpkm|rpkm|cpm|normali[sz]ed|norm[_.-]counts)(?![a-z])", re.IGNORECASE
)


def normalised_marker(*texts: str) -> str | None:
    """The first normalisation word (TPM, FPKM...) found in ``texts``, else ``None``."""
    for text in texts:
        if match := _NORMALISED.search(text):
            return match.group(0)
    return None


def has_header(layout: Layout) -> bool:
    """Whether the first line is a header, by the rule of :mod:`gseio.readers._header`.

    Quotes count as evidence only when the body leaves its numbers unquoted (R's ``write.csv``);
    a file that quotes every field (``QUOTE_ALL``) is judged by the fields' content.
    """
    fields = layout.header
    if len(fields) < 2:
        return bool(fields) and not is_number(fields[0])
    quoted = layout.quoted[1:] if any(layout.quoted[1:]) and not _quotes_numbers(layout) else []
    return is_header(fields[0], fields[1:], quoted=quoted)


def _quotes_numbers(layout: Layout) -> bool:
    """Whether the first body line quotes a field after its label."""
    line = next((row for row in layout.body.split(b"\n", 8)[:8] if row.strip()), b"")
    return b'"' in line.partition(layout.delimiter.encode())[2]


def _looks_wide(head: bytes, source: Source) -> bool:
    if b"\0" in head[:4096]:
        return False
    try:
        layout = find_layout(head, source, quiet=True)
    except FormatError:
        return False
    if not has_header(layout):
        return False
    rows = sample_rows(layout, 50)  # the head holds whole lines (see _registry.read_head)
    if not rows or max(len(r) for r in rows) < 3:
        return False  # two columns: a per-cell table
    try:
        plan = plan_columns(layout, rows, source)
        width, values = len(plan.header), plan.values
    except FormatError:
        # a table header ("gene<TAB>...") wider or narrower than a numeric body is still a wide table: the
        # reader says what is wrong. Its corner must say so (a Matrix Market banner over "1 1 1" is no header)
        corner = layout.header[0].strip().lower()
        if not (corner == "" or corner in GENE_HEADERS | CELL_HEADERS):
            return False
        width = len(rows[0])
        values = list(range(1, width))
    full = [r for r in rows if len(r) == width]
    if len(full) < 0.9 * len(rows):
        return False
    if values == list(range(1, width)) and all(all_numbers(r[1:]) for r in full):
        return bool(full)  # every value a number: no need to look at them one by one
    cells = [r[j] for r in full for j in values]
    numeric = sum(1 for v in cells if is_number(v))
    return numeric > 0 and numeric + sum(1 for v in cells if is_missing(v)) >= 0.9 * len(cells)


def sniff(head: bytes, source: Source) -> float:
    """Score ``head`` as a wide table with a header (0.5: the layout is generic)."""
    return 0.5 if _looks_wide(head, source) else 0.0


def read_table_piece(
    data: bytes | None,
    source: Source,
    options: ReadOptions,
    *,
    orientation: Orientation = "auto",
    skip_lines: int = 0,
    comment: tuple[bytes, ...] = (b"#",),
    values: str | None = None,
    notes: dict[str, str] | None = None,
) -> Piece:
    """Parse a wide table into one piece (the engine of the table-shaped formats).

    ``data`` is the decompressed file, or ``None`` to read ``source`` block by block (the
    working set is then a block of lines, whatever the file's size). ``values``
    (``"counts"``/``"normalized"``) is decided by the caller's format when given, else from
    the file name, header and comments (see the module notes). Format readers that force an
    ``orientation`` give its reason as ``notes["orientation"]``.
    """
    if orientation not in get_args(Orientation):
        raise ValueError(f"orientation must be one of {', '.join(map(repr, get_args(Orientation)))}")
    blocks = _given(data) if data is not None else line_blocks(source, block_bytes=TABLE_BLOCK_BYTES)
    with contextlib.closing(blocks):  # an error mid-file closes the file now, not when the error is dropped
        layout = _head_layout(blocks, source, skip_lines=skip_lines, comment=comment)
        if not has_header(layout):
            raise FormatError(
                "the first line is not a header (its last field is a number); a headerless multi-column table "
                "is htseq-count output: read it with format='htseq'",
                path=source,
            )
        plan = plan_columns(layout, sample_rows(_sample(layout)), source)
        comments = layout.comments
        table = parse_table(layout, plan, source, more=blocks)
        del layout  # its body (the first blocks) is parsed
    notes = dict(notes or {})
    if orientation == "auto":
        decision = decide_orientation(table.labels, table.columns, corner=table.corner)
        genes_by_cells, notes["orientation"] = decision.genes_by_cells, decision.note
    else:
        genes_by_cells = orientation == "genes_by_cells"
        notes.setdefault(
            "orientation", f"{orientation.replace('_by_', ' x ')}: set by orientation={orientation!r}"
        )
    if table.annotations:
        notes.setdefault("annotations", f"gene annotation columns kept in var: {', '.join(table.annotations)}")
    if values is None:
        marker = normalised_marker(source.name, "\t".join(plan.header), *comments)
        values = "counts" if marker is None else "normalized"
        if marker is not None:
            notes["values"] = f"normalized: {marker!r} in the file name, header or comments"
    if len(table.columns) == 1 and genes_by_cells and table.columns[0].strip().lower() in GENERIC_VALUE_HEADERS:
        # one value column named "Counts": the file, not the header, names the cell
        name = cell_id_from_name(_open.strip_compression_suffix(source.name)).removesuffix(".gct")
        cell = _names.clean([name], what="cell id", path=source, where=lambda _: "the file name")
        cell.into(notes, "cell_names")
        table.columns = list(cell.names)
    return build_piece(
        table,
        genes_by_cells=genes_by_cells,
        policy=options.duplicate_genes,
        path=source,
        values=values,
        notes=notes,
    )


#: Blocks of decompressed lines read at once from a wide table.
TABLE_BLOCK_BYTES = 8 << 20
#: The body rows the column roles are decided from: this many, or fewer when they pass SAMPLE_BYTES.
SAMPLE_ROWS = 200
#: The most body text the column roles are decided from (at least one row).
SAMPLE_BYTES = 1 << 20


def _given(data: bytes) -> Iterator[bytes]:
    yield data


def _head_layout(
    blocks: Iterator[bytes], source: Source, *, skip_lines: int, comment: tuple[bytes, ...]
) -> Layout:
    """The layout of the table's first blocks: read until the header and the sample rows are in."""
    head, layout = b"", None
    for block in blocks:
        head = block if not head else head + block
        try:
            layout = find_layout(head, source, skip_lines=skip_lines, comment=comment)
        except FormatError:  # only blank or comment lines so far
            layout = None
            continue
        body = layout.body
        if len(body) >= SAMPLE_BYTES or body.count(b"\n", 0, SAMPLE_BYTES) > SAMPLE_ROWS:
            return layout
    return layout or find_layout(head, source, skip_lines=skip_lines, comment=comment)


def _sample(layout: Layout) -> Layout:
    """``layout`` with its body cut to the rows that decide the column roles (whole lines, at least one)."""
    body, end = layout.body, 0
    for _ in range(SAMPLE_ROWS):
        if end >= SAMPLE_BYTES and body[:end].strip():
            break
        end = body.find(b"\n", end) + 1
        if end == 0:
            return layout
    return dataclasses.replace(layout, body=body[:end])


def read_unit(unit: Unit, options: ReadOptions) -> list[Piece]:
    """Parse one wide table into a :class:`~gseio._piece.Piece` of its cells."""
    return [read_table_piece(None, unit.main, options, orientation=options.orientation)]


def read_wide_table(
    path: str | os.PathLike[str],
    *,
    orientation: Orientation = "auto",
    duplicate_genes: DuplicateGenes = "sum",
    dtype: DType = "auto",
) -> AnnData:
    """Read a wide count table (genes x cells or cells x genes) into an AnnData.

    Parameters
    ----------
    path
        A CSV/TSV/whitespace table with a header line, plain or compressed.
    orientation
        ``"auto"`` (decide from the row and column labels; undecidable tables are
        genes x cells), ``"genes_by_cells"`` or ``"cells_by_genes"``.
    duplicate_genes
        A repeated gene: ``"sum"`` (default), keep the ``"first"``, or ``"error"``.
    dtype
        ``"auto"``, ``"float32"`` or ``"float64"``; see :func:`gseio.read_gse_dir`.

    Returns
    -------
    AnnData, cells x genes, ``X`` CSR without stored zeros. ``var`` holds the file's gene
    annotation columns (``gene_symbols``, ``chromosome``, ``length``...); ``obs`` holds
    ``sample``, ``source_file``, ``cell`` and htseq-count's counters when present
    (``htseq_no_feature``...). ``uns["gseio"]["notes"]`` says which orientation was chosen and why.

    Raises
    ------
    ~gseio.errors.InputError
        No header, a header/body width mismatch, ragged rows, a text column that is not a
        gene annotation, a cell id given twice, or a missing, non-numeric, negative or
        infinite value. Messages give the file's line and column.
    """
    from ..assemble import read

    return read(path, format="wide_table", orientation=orientation, duplicate_genes=duplicate_genes, dtype=dtype)


register_format(
    FormatSpec(
        name="wide_table",
        description="wide count table with a header: genes x cells or cells x genes",
        sniff=sniff,
        read_unit=read_unit,
    )
)
