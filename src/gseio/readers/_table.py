"""Shared parsing of wide text tables (one label column, then one column per cell or gene).

Used by the generic wide-table reader and by the tool formats that are wide tables with a
preamble (Drop-seq DGE, GCT). Bytes are normalised (BOM, comment lines, whitespace
separators), the header is split with a CSV-aware splitter (quoted fields), a sample of
the body decides which columns are per-gene annotations, and Arrow's C++ CSV reader
parses the body: label and annotation columns as bytes, value columns as float64.
"""

from __future__ import annotations

import csv
import itertools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from ..errors import FormatError
from ._decode import decode_name, decode_names, report
from ._labels import CELL_HEADERS, GENE_HEADERS
from ._lines import line_of_row

__all__ = [
    "Layout",
    "Table",
    "decode_column",
    "find_layout",
    "is_number",
    "parse_table",
    "plan_columns",
    "ragged_row",
]

#: Prefix htseq-count gives its special counters (kept per cell in ``obs``, never genes).
HTSEQ_SPECIAL_PREFIX = "__"
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_MISSING = frozenset({"", "na", "nan", "n/a", "null", "none", "inf", "-inf", "+inf", "infinity"})
_BLANK_NUMBER = r"[^\S\n]*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[^\S\n]*"
_NUMBERS = re.compile(rf"{_BLANK_NUMBER}(?:\n{_BLANK_NUMBER})*")  # numbers, one per line
_DIGITS = str.maketrans("", "", "0123456789\n")  # deletes digits and line ends

#: Header names of per-gene annotation columns, normalised (lower case, no blanks), and their var name.
ANNOTATION_COLUMNS = {
    **dict.fromkeys(
        ("gene_name", "gene_names", "gene_symbol", "gene_symbols", "genesymbol", "symbol", "description",
         "gene_description", "gene_short_name", "genename", "external_gene_name", "hgnc_symbol", "mgi_symbol"),
        "gene_symbols",
    ),
    **dict.fromkeys(("chr", "chrom", "chromosome", "seqname", "seqnames", "seqid"), "chromosome"),
    "start": "start",
    "end": "end",
    "strand": "strand",
    "length": "length",
    "gene_length": "length",
    **dict.fromkeys(("gene_type", "gene_biotype", "biotype"), "gene_type"),
}  # fmt: skip
_CHROMOSOME = re.compile(r"^(chr)?([0-9]{1,2}|[XYZWM]|MT|[IVX]{1,5}|2[LR]|3[LR]|Un.*|.*_random)$", re.IGNORECASE)


def all_numbers(fields: list[str]) -> bool:
    """Whether every field is a decimal number: one regular-expression match, not one per field."""
    text = "\n".join(fields)
    if not text:
        return False
    if not text.translate(_DIGITS) and "\n\n" not in text and text[0] != "\n" and text[-1] != "\n":
        return True  # whole numbers only, the usual count table: one pass in C, 100x faster than the pattern
    return _NUMBERS.fullmatch(text) is not None


def is_number(text: str) -> bool:
    """Whether ``text`` (unquoted) is a decimal number."""
    return bool(_NUMBER.match(text.strip()))


def is_missing(text: str) -> bool:
    """Whether ``text`` is a missing or non-finite marker (reported precisely by the reader)."""
    return text.strip().lower() in _MISSING


@dataclass(slots=True)
class Layout:
    """A table's normalised text: delimiter, header fields and body bytes."""

    body: bytes
    delimiter: str
    header: list[str]
    quoted: list[bool]
    comments: list[str] = field(default_factory=list)
    first_line: int = 2  # the file's line number of the body's first line, for messages
    recoded: list[int] = field(default_factory=list)  # header fields that were not UTF-8 (see _decode)
    comment: tuple[bytes, ...] = (b"#",)  # prefixes of comment lines
    blank_separated: bool = False  # fields separated by runs of blanks (normalised to one tab)

    def line(self, row: int) -> int:
        """The file's line number of parsed data row ``row`` (0-based; empty lines are not rows)."""
        return line_of_row(self.body, row, self.first_line)

    def normalise(self, block: bytes) -> bytes:
        """Normalise further body lines (read after :attr:`body`) as the body was."""
        return clean_body(block, self.comment, blank_separated=self.blank_separated, at_line_start=True)


def split_fields(line: str, delimiter: str) -> tuple[list[str], list[bool]]:
    """Split one line CSV-style; also tell which fields were quoted (text, whatever they hold)."""
    raw = line.split(delimiter)
    if '"' not in line and "\r" not in line:  # nothing for a CSV parser to do (a wide header: 100,000s of fields)
        return raw, [False] * len(raw)
    try:
        fields = next(csv.reader([line], delimiter=delimiter, quotechar='"'), [])
    except csv.Error:  # a stray carriage return or a huge field: split plainly, quotes stripped
        fields = [r.strip().strip('"') for r in raw]
    quoted = [r.strip().startswith('"') for r in raw] if len(raw) == len(fields) else [False] * len(fields)
    return fields, quoted


def _normalise_blanks(data: bytes) -> bytes:
    # runs of blanks separate fields; Arrow wants one delimiter byte
    data = re.sub(rb"[ \t]+", b"\t", data)
    return re.sub(rb"(?m)^\t|\t(?=\r?$)", b"", data)


def clean_body(
    body: bytes, comment: tuple[bytes, ...], *, blank_separated: bool, at_line_start: bool = False
) -> bytes:
    """Blank the comment lines of body lines and, for blank-separated tables, normalise separators.

    ``at_line_start``: ``body`` continues a body already read, so its first line is a line like any other.
    """
    if any(b"\n" + c in body or (at_line_start and body.startswith(c)) for c in comment):  # rare: filter only then
        # blanked, not removed: the parser skips empty lines and messages keep the file's line numbers
        body = b"\n".join(b"" if row.startswith(comment) else row for row in body.split(b"\n"))
    return _normalise_blanks(body) if blank_separated else body


def find_layout(
    data: bytes, path: object, *, skip_lines: int = 0, comment: tuple[bytes, ...] = (b"#",), quiet: bool = False
) -> Layout:
    """Normalise ``data`` and split off its header line.

    Parameters
    ----------
    data
        The decompressed file.
    path
        The source, named in errors.
    skip_lines
        Leading lines that are a preamble (GCT's version and dimension lines).
    comment
        Lines starting with one of these are comments (kept in :attr:`Layout.comments`).
    quiet
        Do not warn about header fields that are not UTF-8 (sniffers; they are in
        :attr:`Layout.recoded` either way).
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    start = 0
    for _ in range(skip_lines):
        end = data.find(b"\n", start)
        start = len(data) if end < 0 else end + 1
    comments: list[str] = []
    while True:  # the first non-blank, non-comment line is the header
        end = data.find(b"\n", start)
        line = data[start:] if end < 0 else data[start:end]
        if comment and line.startswith(comment):
            comments.append(line.rstrip(b"\r").decode("utf-8", "replace"))
        elif line.strip() or end < 0:
            break
        start = len(data) if end < 0 else end + 1
    first = line.rstrip(b"\r")
    if not first.strip():
        raise FormatError("no data lines (only blank or comment lines)", path=path)
    body = b"" if end < 0 else data[end + 1 :]
    first_line = data.count(b"\n", 0, len(data) - len(body)) + 1
    try:
        header_text, legacy = first.decode("utf-8"), False
    except UnicodeDecodeError:  # split as Latin-1 (a character per byte; delimiters are ASCII), decode each
        header_text, legacy = first.decode("latin-1"), True
    blanks = b"\t" not in first and b"," not in first
    if b"\t" in first:
        delimiter = "\t"
    elif b"," in first:
        delimiter = ","
    else:
        delimiter = "\t"
        header_text = "\t".join(re.split(r"[ \t]+", header_text.strip(" \t")))  # as the body: ASCII blanks
    body = clean_body(body, comment, blank_separated=blanks)
    header, quoted = split_fields(header_text, delimiter)
    recoded: list[int] = []
    if legacy:
        decoded = [decode_name(f.encode("latin-1")) for f in header]
        header = [name for name, _ in decoded]
        recoded = [k for k, (_, was_legacy) in enumerate(decoded) if was_legacy]
    if not quiet:
        report(path, recoded, header, line=lambda k: first_line - 1, what="header fields")
    return Layout(body, delimiter, header, quoted, comments, first_line, recoded, comment, blanks)


def sample_rows(layout: Layout, n: int = 200, *, complete: bool = True) -> list[list[str]]:
    """The first ``n`` non-blank body rows, split (the last one dropped unless ``complete``)."""
    lines = layout.body.split(b"\n", n + 1)[: n + 1]
    if not complete and len(lines) > n:
        lines = lines[:n]
    elif not complete and len(lines) > 1:
        lines = lines[:-1]  # the head was cut: the last line may be partial
    rows = []
    for line in lines[:n]:
        line = line.rstrip(b"\r")
        if line.strip():
            rows.append(split_fields(line.decode("utf-8", "replace"), layout.delimiter)[0])
    return rows


@dataclass(slots=True)
class ColumnPlan:
    """Which columns are labels, per-gene annotations and values."""

    header: list[str]  # with the corner restored when the header omitted it
    annotations: dict[int, str]  # column -> var name
    values: list[int]
    dropped: list[int] = field(default_factory=list)  # empty trailing columns (a trailing delimiter)


def plan_columns(layout: Layout, rows: list[list[str]], path: object) -> ColumnPlan:
    """Decide the role of each column from the header and a sample of body rows.

    Raises
    ------
    FormatError
        The header and body widths disagree, or a column holds text that is not a known
        per-gene annotation (a sample sheet, not a count table).
    """
    header = list(layout.header)
    if not rows:
        raise FormatError("the file has a header but no data rows", path=path)
    width = len(rows[0])
    # a corner word ("gene", "GENE", "Name") shows the header names the label column: it omits nothing
    corner = header[0].strip().lower() in GENE_HEADERS | CELL_HEADERS
    if width == len(header) + 1 and not corner:  # R's write.table: the row-name column has no header
        header.insert(0, "")
    elif width != len(header):
        named = f"; its first field {header[0]!r} names the label column" if corner else ""
        raise FormatError(
            f"the header has {len(header)} columns but line {layout.line(0)} has {width}; every row of a table "
            f"needs one field per header column (the header may omit only the first, the row-name column{named})",
            path=path,
        )
    if width < 2:
        raise FormatError("a count table needs a label column and at least one value column", path=path)
    annotations: dict[int, str] = {}
    values: list[int] = []
    dropped: list[int] = []
    full = [r for r in rows if len(r) == width]
    numeric = bool(full) and all(all_numbers(r[1:]) for r in full)  # the usual count table: no column to study
    for j in range(1, width):
        name = header[j].strip().lower().replace(" ", "_")
        if name in ANNOTATION_COLUMNS:
            annotations[j] = ANNOTATION_COLUMNS[name]
            continue
        if numeric:
            values.append(j)
            continue
        column = [r[j] for r in full]
        text = [v for v in column if not is_number(v) and not is_missing(v)]
        if name == "" and j == width - 1 and all(v.strip() == "" for v in column):
            dropped.append(j)  # a trailing delimiter on every line
        elif name == "" and not values and column and len(text) >= 0.5 * len(column):
            # htseq-count-barcodes --add-chromosome-info: an unnamed text column before the counts
            chrom = sum(1 for v in text if _CHROMOSOME.match(v))
            kind = "chromosome" if chrom >= 0.8 * len(text) else "gene_symbols"
            annotations[j] = kind if kind not in annotations.values() else f"annotation_{j}"
        elif column and len(text) > 0.5 * len(column):  # a few bad values are reported precisely later
            raise FormatError(
                f"column {j + 1} ({header[j]!r}) holds text ({text[0]!r}), not counts, and is not a known gene "
                "annotation (gene_name, Description, Chr, Start, End, Strand, Length...); not a count table "
                "(a sample sheet or an annotation table?)",
                path=path,
            )
        else:
            values.append(j)
    if not values:
        raise FormatError("no value columns: every column after the first is a gene annotation", path=path)
    return ColumnPlan(header, annotations, values, dropped)


@dataclass(slots=True)
class Table:
    """A parsed wide table: row labels, the values as CSR rows over the value columns, per-row annotations.

    Row ``i`` holds the values of its non-zero columns ``indices[indptr[i]:indptr[i + 1]]`` (positions
    in :attr:`columns`, increasing) in ``data``: float32 when every value of the table is an integer
    float32 holds exactly, else float64.
    """

    labels: np.ndarray  # object array of str
    corner: str
    columns: list[str]
    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    annotations: dict[str, np.ndarray]
    column_numbers: list[int] = field(default_factory=list)  # 1-based header position of each value column
    line: Callable[[int], int] | None = None  # the file's line number of a data row, for messages


def decode_column(
    column: object, *, path: object = None, line: Callable[[int], int] | None = None, what: str = "labels"
) -> np.ndarray:
    """An Arrow binary column as an object array of str (nulls as ""), decoded name by name.

    UTF-8, and Windows-1252 for the names that are not (:mod:`gseio.readers._decode`); with
    ``path``, those are warned about, ``line(row)`` giving their line numbers.
    """
    names, recoded = decode_names(column)
    if path is not None:
        report(path, recoded, names, line=line, what=what)
    return names


def ragged_row(layout: Layout, width: int) -> str | None:
    """Describe the first body line without ``width`` fields (Arrow's message names no line), else ``None``."""
    for i, row in enumerate(layout.body.split(b"\n")):
        row = row.rstrip(b"\r")
        if row.strip():
            n = len(split_fields(row.decode("utf-8", "replace"), layout.delimiter)[0])
            if n != width:
                text = row[:80].decode("utf-8", "replace")
                return f"line {layout.first_line + i}: expected {width} columns, got {n}: {text!r}"
    return None


def parse_table(layout: Layout, plan: ColumnPlan, path: object, *, more: Iterable[bytes] = ()) -> Table:
    """Parse the body block by block; check every value (finite, >= 0, present).

    Parameters
    ----------
    layout, plan
        The table's layout and column roles.
    path
        The source, named in errors.
    more
        Further body lines read after ``layout.body`` (blocks of whole lines, not yet normalised).

    Raises
    ------
    FormatError
        A row has another number of fields than the header, a label is empty, or a quote is never
        closed on its line.
    InvalidValueError
        A value is missing, NaN, non-numeric, negative or infinite (line, label and column named).
    """
    from ._table_body import BodyParser

    parser = BodyParser(layout.delimiter, plan.header, [0, *plan.annotations], plan.values, path)
    body = parser.parse(itertools.chain([layout.body], map(layout.normalise, more)), layout.first_line)
    labels = decode_column(body.labels, path=path, line=body.line, what="row labels")
    annotations = {
        var: _annotation(decode_column(body.annotations[j], path=path, line=body.line, what=f"{var} values"))
        for j, var in plan.annotations.items()
    }
    return Table(
        labels,
        plan.header[0],
        [plan.header[j] for j in plan.values],
        body.indptr,
        body.indices,
        body.data,
        annotations,
        column_numbers=[j + 1 for j in plan.values],
        line=body.line,  # type: ignore[arg-type]
    )


def _annotation(values: np.ndarray) -> np.ndarray:
    """Numbers as float64 (missing as NaN) when every present value is one, else strings."""
    present = [v for v in values if v != ""]
    if present and all(is_number(v) for v in present):
        return np.array([float(v) if v != "" else np.nan for v in values], dtype=np.float64)
    return values
