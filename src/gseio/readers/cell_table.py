"""Per-cell count tables: one cell per file, one ``gene<sep>count`` line per gene.

This is the most common GEO layout for plate-based protocols (Smart-seq2, C1): a
``GSE..._RAW.tar`` of thousands of files such as ``GSM3021397_LM2_G15.hs.raw_counts.txt.gz``.
Files are tab-, comma- or whitespace-separated, with or without a header line
(``gene<TAB>LM2_G15``: the second field names the cell), compressed or not, with
CRLF line endings, a UTF-8 byte-order mark or ``#`` comment lines. Whether line 1 is a
header follows :mod:`gseio.readers._header` (``ENSG...<TAB>NA`` is data with a bad count, not a
header naming a cell ``NA``); names that are not UTF-8 are read one by one as Windows-1252,
with a warning (:mod:`gseio.readers._decode`). htseq-count's
special counters (``__no_feature``, ``__ambiguous``, ...) are not genes: they go to
``obs`` as ``htseq_no_feature``, ``htseq_ambiguous``, ....

Parsing is done by Arrow's C++ CSV reader. The files of one series almost always
share their gene column byte for byte; a :class:`GeneBlockCache` recognises a gene
column seen before (one memory comparison) so its names are decoded only once.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .._blocks import line_blocks
from .._options import DType, DuplicateGenes
from .._piece import GeneBlock, Piece, check_counts
from .._registry import FormatSpec, register_format
from .._source import Source
from .._unit import ReadOptions, Unit
from ..errors import FormatError, InvalidValueError
from ..geo import cell_id_from_name
from . import _names, _table_piece
from ._decode import decode_name, decode_names, report
from ._gene_blocks import BlockInfo, GeneBlockCache
from ._header import is_header
from ._lines import find_unparsable, line_of_row
from ._table import HTSEQ_SPECIAL_PREFIX

if TYPE_CHECKING:
    import pyarrow as pa
    from anndata import AnnData

__all__ = ["read_cell_table", "read_unit", "sniff"]

#: Header words that name the value column rather than the cell.
GENERIC_VALUE_HEADERS = frozenset(
    {
        "",
        "count",
        "counts",
        "value",
        "values",
        "expression",
        "reads",
        "read_count",
        "readcount",
        "raw_count",
        "raw_counts",
        "rawcount",
        "umi",
        "umis",
        "umi_count",
        "x",
    }
)

_MISSING = frozenset({b"", b"na", b"nan", b"n/a", b"null", b"none", b"inf", b"-inf", b"+inf", b"infinity"})
_NUMBER = re.compile(rb"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _is_number(field: bytes) -> bool:
    return bool(_NUMBER.match(field.strip().strip(b'"')))


@dataclass(frozen=True, slots=True)
class _Layout:
    """What :func:`_prepare` learnt about a file's text."""

    body: bytes
    delimiter: str
    header: list[str] | None
    first_line: int  # the file's line number of the body's first line, for messages

    def line(self, row: int) -> int:
        """The file's line number of parsed data row ``row`` (0-based)."""
        return line_of_row(self.body, row, self.first_line)


def _strip_comments(data: bytes) -> bytes:
    # ``b"\n#" in data`` is slow (every newline is a candidate); '#' itself is rare
    first = data.find(b"#")
    if first < 0 or (first > 0 and data.find(b"\n#", first - 1) < 0):
        return data
    # blanked, not removed: the parser skips empty lines and messages keep the file's line numbers
    return b"\n".join(b"" if line.startswith(b"#") else line for line in data.split(b"\n"))


def _prepare(data: bytes, path: Source, *, quiet: bool = False) -> _Layout:
    """Normalise a per-cell table's bytes and find its delimiter and header (see :mod:`._header`).

    ``quiet``: no warning about header fields that are not UTF-8 (for the sniffer).
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    data = _strip_comments(data)
    start = 0
    while True:  # the first non-blank line, without copying the data
        end = data.find(b"\n", start)
        first = data[start:] if end < 0 else data[start:end]
        if first.strip() or end < 0:
            break
        start = end + 1
    first = first.rstrip(b"\r")
    if not first.strip():
        raise FormatError("no data lines (only blank or comment lines)", path=path)
    first_line = data.count(b"\n", 0, start) + 1
    if b"\t" in first:
        delimiter = "\t"
    elif b"," in first:
        delimiter = ","
    elif len(first.split()) > 1:
        delimiter = " "
    else:
        raise FormatError(
            f"the first line has a single column ({first[:60]!r}); a per-cell table has two: gene and count",
            path=path,
        )
    if delimiter == " ":  # runs of blanks separate fields; Arrow wants one delimiter byte
        data = re.sub(rb"[ \t]+", b"\t", data[start:])
        data = re.sub(rb"(?m)^\t|\t(?=\r?$)", b"", data)
        start, end = 0, data.find(b"\n")
        delimiter = "\t"
        first = re.sub(rb"[ \t]+", b"\t", first.strip())
    fields = first.split(delimiter.encode())
    if len(fields) != 2:
        raise FormatError(
            f"the first line has {len(fields)} columns; a per-cell table has two (gene, count). "
            "Tables with one column per cell are wide tables, not per-cell files",
            path=path,
        )
    decoded = [decode_name(f.strip().strip(b'"')) for f in fields]
    header = [name for name, _ in decoded]
    if not is_header(header[0], header[1:]):  # a data line: its bad count, if any, is reported like any other
        return _Layout(data if start == 0 else data[start:], delimiter, None, first_line)
    if not quiet:
        report(path, [k for k, (_, legacy) in enumerate(decoded) if legacy], header,
               line=lambda k: first_line, what="header fields")  # fmt: skip
    return _Layout(b"" if end < 0 else data[end + 1 :], delimiter, header, first_line + 1)


def sniff(head: bytes, source: Source) -> float:
    """Score ``head`` as a two-column gene/count table (0.5: the layout is generic)."""
    return 0.5 if _looks_like_two_columns(head, source) else 0.0


def _looks_like_two_columns(head: bytes, source: Source) -> bool:
    if b"\0" in head[:4096]:
        return False
    lines = head.split(b"\n")
    if len(head) >= 4096 and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut
    try:
        layout = _prepare(b"\n".join(lines), source, quiet=True)
    except FormatError:
        return False
    rows = [r.rstrip(b"\r") for r in layout.body.split(b"\n", 50)[:50] if r.strip()]
    if not rows:
        return False
    # lenient on values (NaN, negatives, a stray word): the reader reports those precisely
    sep = layout.delimiter.encode()
    values = [parts[1].strip().strip(b'"') for r in rows if len(parts := r.split(sep)) == 2]
    numeric = sum(1 for v in values if _is_number(v))
    missing = sum(1 for v in values if v.lower() in _MISSING or (v[:1] == b"-" and _is_number(v[1:])))
    return len(values) >= 0.9 * len(rows) and numeric > 0 and numeric + missing >= 0.5 * len(rows)


def _block_info(column: pa.Array, policy: DuplicateGenes, path: Source, line: Callable[[int], int]) -> BlockInfo:
    names, recoded = decode_names(column)
    report(path, recoded, names, line=line, what="gene names")
    empty = np.flatnonzero(names == "")
    if empty.size:
        raise FormatError(f"line {line(int(empty[0]))} has an empty gene name", path=path)
    broken = [i for i, name in enumerate(names) if "\n" in name or "\r" in name]
    if broken:  # an unbalanced quote made the parser join lines: rows would be lost silently
        raise FormatError(
            f"line {line(broken[0])}: a quoted gene name spans lines "
            f"({names[broken[0]][:40]!r}); the file has an unbalanced quote",
            path=path,
        )
    cleaned = _names.clean(names, what="gene name", path=path, where=lambda i: f"line {line(i)}")
    names = cleaned.names
    gene_rows, special, n_dup = _table_piece.gene_rows(names, policy, path)
    keep = None if len(gene_rows) == len(names) else gene_rows
    block = GeneBlock.from_names(names if keep is None else names[keep], n_duplicates=n_dup)
    special_names = tuple("htseq_" + n[len(HTSEQ_SPECIAL_PREFIX) :] for n in names[special])
    return BlockInfo(block, keep, special, special_names, cleaned.note)


def _ragged_row(layout: _Layout) -> str | None:
    """Describe the first data row whose column count is not 2 (Arrow's threaded parser does not say)."""
    sep = layout.delimiter.encode()
    for i, row in enumerate(layout.body.split(b"\n")):
        row = row.rstrip(b"\r")
        if row.strip() and row.count(sep) != 1:
            return (
                f"line {layout.first_line + i}: expected 2 columns, got {row.count(sep) + 1}: "
                f"{row[:80].decode('utf-8', 'replace')!r}"
            )
    return None


def _text(value: bytes | None) -> str:
    return "" if value is None else value.decode("utf-8", "replace")


def _parse(layout: _Layout, path: Source) -> tuple[pa.Array, np.ndarray]:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    def read(count_type: pa.DataType) -> pa.Table:
        return pacsv.read_csv(
            pa.BufferReader(layout.body),
            # one block: no chunks to combine; files are parsed in parallel by the caller's threads
            read_options=pacsv.ReadOptions(
                column_names=["gene", "count"], use_threads=False, block_size=max(1 << 20, len(layout.body) + 1)
            ),
            parse_options=pacsv.ParseOptions(delimiter=layout.delimiter),
            convert_options=pacsv.ConvertOptions(column_types={"gene": pa.binary(), "count": count_type}),
        )

    try:
        table = read(pa.float64())
    except pa.ArrowInvalid as e:
        message = str(e)
        if "conversion error" not in message:
            raise FormatError(_ragged_row(layout) or message, path=path) from e
        table = read(pa.binary())
        counts = table.column("count").to_pylist()
        found = find_unparsable(message, {1: counts})
        if found is None:  # pragma: no cover - Arrow refused a value the number pattern accepts
            raise FormatError(message, path=path) from e
        i = found[1]
        raise InvalidValueError(
            f"line {layout.line(i)} (gene {_text(table.column('gene')[i].as_py())!r}): count "
            f"{_text(counts[i])!r} is not a number",
            path=path,
        ) from e
    genes = table.column("gene").combine_chunks()
    count_col = table.column("count").combine_chunks()
    if count_col.null_count:
        i = int(np.flatnonzero(count_col.is_null().to_numpy(zero_copy_only=False))[0])
        raw = _text(read(pa.binary()).column("count")[i].as_py()).strip()  # "NA", "nan", "": say which
        raise InvalidValueError(
            f"line {layout.line(i)} (gene {_text(genes[i].as_py())!r}): count {raw!r} is missing or NaN", path=path
        )
    values = count_col.to_numpy()
    check_counts(values, path, lambda i: f"line {layout.line(i)} (gene {_text(genes[i].as_py())!r})")
    return genes, values


#: A per-cell file up to this size (decompressed) is parsed at once; a larger one block by block.
CELL_BLOCK_BYTES = 16 << 20


def read_unit(unit: Unit, options: ReadOptions) -> list[Piece]:
    """Parse one per-cell table into a single-cell :class:`~gseio._piece.Piece`."""
    source = unit.main
    with contextlib.closing(line_blocks(source, block_bytes=CELL_BLOCK_BYTES)) as blocks:
        data = next(blocks)
        second = next(blocks, None)
        if second is not None:  # larger than a block: read block by block
            from ._cell_blocks import read_blocks

            return [read_blocks(data, itertools.chain([second], blocks), source, options)]
    layout = _prepare(data, source)
    if not layout.body.strip():
        raise FormatError("the file has a header but no data rows", path=source)
    genes, values = _parse(layout, source)
    policy = options.duplicate_genes
    cache: GeneBlockCache | None = options.cache
    info = cache.get(genes, policy) if cache is not None else None
    if info is None:
        info = _block_info(genes, policy, source, layout.line)
        if cache is not None:
            cache.put(genes, policy, info)
    gene_values = values if info.keep is None else values[info.keep]
    nonzero = np.flatnonzero(gene_values)
    header = layout.header
    notes = {} if info.note is None else {"gene_names": info.note}
    if header is not None and header[1].lower() not in GENERIC_VALUE_HEADERS and header[1]:
        where = f"line {layout.first_line - 1} (the header), column 2"
        cell = _names.clean([header[1]], what="cell id", path=source, where=lambda _: where)
    else:
        cell = _names.clean([cell_id_from_name(source.name)], what="cell id", path=source,
                            where=lambda _: "the file name")  # fmt: skip
    cell.into(notes, "cell_names")
    return [
        Piece(
            source=str(source),
            cells=[str(cell.names[0])],
            genes=info.block,
            indptr=np.array([0, nonzero.size], dtype=np.int64),
            indices=nonzero.astype(np.int32),
            data=gene_values[nonzero],
            obs={
                name: values[row : row + 1]
                for name, row in zip(info.special_names, info.special_rows, strict=True)
            },
            notes=notes,
        )
    ]


def read_cell_table(
    path: str | os.PathLike[str],
    *,
    duplicate_genes: DuplicateGenes = "sum",
    dtype: DType = "auto",
) -> AnnData:
    """Read one per-cell count table into a 1-cell AnnData.

    Parameters
    ----------
    path
        A two-column ``gene<sep>count`` file: tab, comma or whitespace separated,
        with or without a header line, plain or ``.gz``/``.bz2``/``.xz``/``.zip``.
    duplicate_genes
        A gene name repeated in the file: ``"sum"`` its counts (default: the total
        count of the cell is kept), keep the ``"first"`` row, or raise (``"error"``).
    dtype
        ``"auto"`` (float32 when every value is an integer below 2**24, so exactly
        representable, else float64), ``"float32"`` or ``"float64"``.

    Returns
    -------
    AnnData with one cell and the file's genes in file order; ``X`` is CSR without
    stored zeros. ``obs`` holds ``sample``, ``source_file`` and ``cell`` (the header's
    cell id, else the file name without its suffixes and GSM accession) and
    htseq-count's special counters (``htseq_no_feature``, ...) when present.

    Raises
    ------
    ~gseio.errors.InputError
        The file is empty, corrupt, not a two-column table, or holds a missing,
        non-numeric, negative or infinite count.
    """
    from ..assemble import read

    return read(path, format="cell_table", duplicate_genes=duplicate_genes, dtype=dtype)


register_format(
    FormatSpec(
        name="cell_table",
        description="per-cell two-column gene/count table, one cell per file",
        sniff=sniff,
        read_unit=read_unit,
    )
)
