"""Shared parsing of wide text tables (one label column, then one column per cell or gene).

Used by the generic wide-table reader and by the tool formats that are wide tables with a
preamble (Drop-seq DGE, GCT). Bytes are normalised (BOM, comment lines, whitespace
separators), the header is split with a CSV-aware splitter (quoted fields), a sample of
the body decides which columns are per-gene annotations, and Arrow's C++ CSV reader
parses the body: label and annotation columns as bytes, value columns as float64.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field

import numpy as np

from .._piece import GeneBlock, Piece, check_counts
from ..errors import FormatError, InvalidValueError

__all__ = ["Layout", "Table", "build_piece", "find_layout", "is_number", "parse_table", "plan_columns"]

#: Prefix htseq-count gives its special counters (kept per cell in ``obs``, never genes).
HTSEQ_SPECIAL_PREFIX = "__"
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_MISSING = frozenset({"", "na", "nan", "n/a", "null", "none", "inf", "-inf", "+inf", "infinity"})

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


def split_fields(line: str, delimiter: str) -> tuple[list[str], list[bool]]:
    """Split one line CSV-style; also tell which fields were quoted (text, whatever they hold)."""
    raw = line.split(delimiter)
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


def find_layout(data: bytes, path: object, *, skip_lines: int = 0, comment: tuple[bytes, ...] = (b"#",)) -> Layout:
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
    if any(b"\n" + c in body for c in comment):  # comment lines inside the body are rare: filter only then
        body = b"\n".join(row for row in body.split(b"\n") if not row.startswith(comment))
    header_text = first.decode("utf-8", "replace")
    if b"\t" in first:
        delimiter = "\t"
    elif b"," in first:
        delimiter = ","
    else:
        delimiter = "\t"
        header_text = "\t".join(header_text.split())
        body = _normalise_blanks(body)
    header, quoted = split_fields(header_text, delimiter)
    return Layout(body, delimiter, header, quoted, comments)


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
    if width == len(header) + 1:  # R's write.table: the row-name column has no header
        header.insert(0, "")
    elif width != len(header):
        raise FormatError(
            f"the header has {len(header)} columns but data row 1 has {width}; every row of a table needs one "
            "field per header column (the header may omit only the first, the row-name column)",
            path=path,
        )
    if width < 2:
        raise FormatError("a count table needs a label column and at least one value column", path=path)
    annotations: dict[int, str] = {}
    values: list[int] = []
    dropped: list[int] = []
    for j in range(1, width):
        column = [r[j] for r in rows if len(r) == width]
        name = header[j].strip().lower().replace(" ", "_")
        text = [v for v in column if not is_number(v) and not is_missing(v)]
        if name in ANNOTATION_COLUMNS:
            annotations[j] = ANNOTATION_COLUMNS[name]
        elif name == "" and j == width - 1 and all(v.strip() == "" for v in column):
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
    """A parsed wide table: row labels, value columns (float64) and per-row annotations."""

    labels: np.ndarray  # object array of str
    corner: str
    columns: list[str]
    values: list[np.ndarray]
    annotations: dict[str, np.ndarray]


def _decode(column: object) -> np.ndarray:
    items = column.to_pylist()  # type: ignore[attr-defined]
    try:
        return np.array([b"" if b is None else b for b in items], dtype=object).astype(str).astype(object)
    except UnicodeDecodeError:  # Latin-1 files exist; decoding them as such loses nothing
        return np.array([(b or b"").decode("latin-1") for b in items], dtype=object)


def _ragged(layout: Layout, width: int) -> str | None:
    for i, row in enumerate(layout.body.split(b"\n")):
        row = row.rstrip(b"\r")
        if row.strip():
            n = len(split_fields(row.decode("utf-8", "replace"), layout.delimiter)[0])
            if n != width:
                return (
                    f"data row {i + 1}: expected {width} columns, got {n}: {row[:80].decode('utf-8', 'replace')!r}"
                )
    return None


def parse_table(layout: Layout, plan: ColumnPlan, path: object) -> Table:
    """Parse the body with Arrow; check every value (finite, >= 0, present).

    Raises
    ------
    FormatError
        A row has another number of fields than the header.
    InvalidValueError
        A value is missing, NaN, non-numeric, negative or infinite (row, column and label named).
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    width = len(plan.header)
    names = [f"c{j}" for j in range(width)]
    text_columns = [0, *plan.annotations]

    def read(value_type: pa.DataType) -> pa.Table:
        types = {names[j]: (pa.binary() if j in text_columns else value_type) for j in range(width)}
        return pacsv.read_csv(
            pa.BufferReader(layout.body),
            read_options=pacsv.ReadOptions(column_names=names, block_size=max(1 << 20, len(layout.body) + 1)),
            parse_options=pacsv.ParseOptions(delimiter=layout.delimiter, quote_char='"'),
            convert_options=pacsv.ConvertOptions(
                column_types=types, include_columns=[n for j, n in enumerate(names) if j not in plan.dropped]
            ),
        )

    try:
        table = read(pa.float64())
    except pa.ArrowInvalid as e:
        if "conversion error" not in str(e):
            raise FormatError(_ragged(layout, width) or str(e), path=path) from e
        table = read(pa.string())
        labels = _decode(table.column("c0"))
        for j in plan.values:
            for i, value in enumerate(table.column(names[j]).to_pylist()):
                if value is not None and not is_number(value) and not is_missing(value):
                    raise InvalidValueError(
                        f"data row {i + 1} ({labels[i]!r}), column {plan.header[j]!r}: {value!r} is not a number",
                        path=path,
                    ) from e
        raise FormatError(str(e), path=path) from e  # pragma: no cover - Arrow and the regex disagree
    labels = _decode(table.column("c0"))
    empty = np.flatnonzero(labels == "")
    if empty.size:
        raise FormatError(f"data row {empty[0] + 1} has an empty label in the first column", path=path)
    broken = [i for i, label in enumerate(labels) if "\n" in label or "\r" in label]
    if broken:  # an unbalanced quote made the parser join lines: rows would be lost silently
        message = f"data row {broken[0] + 1}: a quoted label spans lines; the file has an unbalanced quote"
        raise FormatError(message, path=path)
    values = []
    for j in plan.values:
        column = table.column(names[j]).combine_chunks()
        if column.null_count:
            i = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
            raise InvalidValueError(
                f"data row {i + 1} ({labels[i]!r}), column {plan.header[j]!r}: the value is missing or NaN",
                path=path,
            )
        array = column.to_numpy()
        check_counts(array, path, lambda i, j=j: f"data row {i + 1} ({labels[i]!r}), column {plan.header[j]!r}")
        values.append(array)
        del column
    annotations = {}
    for j, var_name in plan.annotations.items():
        annotations[var_name] = _annotation(_decode(table.column(names[j])))
    del table
    return Table(labels, plan.header[0], [plan.header[j] for j in plan.values], values, annotations)


def _annotation(values: np.ndarray) -> np.ndarray:
    """Numbers as float64 (missing as NaN) when every present value is one, else strings."""
    present = [v for v in values if v != ""]
    if present and all(is_number(v) for v in present):
        return np.array([float(v) if v != "" else np.nan for v in values], dtype=np.float64)
    return values


def gene_rows(names: np.ndarray, policy: str, path: object) -> tuple[np.ndarray, np.ndarray, int]:
    """Split gene positions from htseq-count counters and apply the duplicate-gene policy."""
    import pandas as pd

    special = np.array([str(n).startswith(HTSEQ_SPECIAL_PREFIX) for n in names], dtype=bool)
    genes = np.flatnonzero(~special)
    duplicated = pd.Index(names[genes]).duplicated()
    n_dup = int(duplicated.sum())
    if n_dup and policy == "error":
        dups = pd.unique(names[genes][duplicated])
        raise FormatError(
            f"{n_dup} genes are repeated ({', '.join(map(str, dups[:5]))}{', ...' if len(dups) > 5 else ''}); "
            "pass duplicate_genes='sum' or 'first'",
            path=path,
        )
    if n_dup and policy == "first":
        genes = genes[~duplicated]
    return genes, np.flatnonzero(special), n_dup


def build_piece(
    table: Table,
    *,
    genes_by_cells: bool,
    policy: str,
    path: object,
    values: str = "counts",
    notes: dict[str, str] | None = None,
) -> Piece:
    """Turn a parsed table into CSR rows (cells) over its genes, without a dense copy.

    htseq-count's counters (``__no_feature``...) become ``obs`` columns ``htseq_no_feature``...;
    per-gene annotations go to the :class:`GeneBlock` (only when genes are rows).
    """
    from scipy import sparse

    notes = dict(notes or {})
    if genes_by_cells:
        gene_names, cells = table.labels, [str(c) for c in table.columns]
    else:
        gene_names, cells = np.array(table.columns, dtype=object), [str(c) for c in table.labels]
    unnamed = [i for i, c in enumerate(cells) if not c.strip()]
    if unnamed and genes_by_cells:
        raise FormatError(f"value column {unnamed[0] + 2} has no name in the header (no cell id)", path=path)
    if not genes_by_cells and any(not str(g).strip() for g in gene_names):
        raise FormatError("a value column has no name in the header (no gene name)", path=path)
    keep, special, n_dup = gene_rows(gene_names, policy, path)
    special_names = ["htseq_" + str(gene_names[s])[len(HTSEQ_SPECIAL_PREFIX) :] for s in special]
    annotations: dict[str, np.ndarray] = {}
    if genes_by_cells:
        annotations = {k: v[keep] for k, v in table.annotations.items()}
        indices, data, counts = [], [], []
        for column in table.values:  # each value column is one cell: one CSR row
            row = column[keep]
            nonzero = np.flatnonzero(row)
            indices.append(nonzero.astype(np.int32))
            data.append(row[nonzero])
            counts.append(nonzero.size)
        obs = {
            name: np.array([c[s] for c in table.values]) for name, s in zip(special_names, special, strict=True)
        }
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        csr_indices = np.concatenate(indices) if indices else np.zeros(0, np.int32)
        csr_data = np.concatenate(data) if data else np.zeros(0)
    else:
        if table.annotations:
            notes["annotations"] = f"per-cell text columns ignored: {', '.join(table.annotations)}"
        rows, cols, data = [], [], []
        for local, j in enumerate(keep):  # each value column is one gene: collect its non-zero cells
            nonzero = np.flatnonzero(table.values[j])
            rows.append(nonzero)
            cols.append(np.full(nonzero.size, local, dtype=np.int64))
            data.append(table.values[j][nonzero])
        obs = {name: table.values[s] for name, s in zip(special_names, special, strict=True)}
        matrix = sparse.csr_matrix(
            (np.concatenate(data or [np.zeros(0)]), (np.concatenate(rows or [np.zeros(0, np.int64)]),
             np.concatenate(cols or [np.zeros(0, np.int64)]))),
            shape=(len(cells), len(keep)),
        )  # fmt: skip
        matrix.sort_indices()
        indptr, csr_indices, csr_data = (
            matrix.indptr.astype(np.int64),
            matrix.indices.astype(np.int32),
            matrix.data,
        )
    block = GeneBlock.from_names(gene_names[keep], n_duplicates=n_dup, annotations=annotations)
    return Piece(
        source=str(path),
        cells=cells,
        genes=block,
        indptr=indptr,
        indices=csr_indices,
        data=csr_data.astype(np.float64, copy=False),
        obs=obs,
        values=values,
        notes=notes,
    )
