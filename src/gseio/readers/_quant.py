"""Shared parsing for per-sample quantifier tables (htseq-count, featureCounts, STAR, RSEM, kallisto, salmon).

These tools all write tab-separated text: an optional header or comment line, one row per
gene or transcript, an identifier column, annotation columns and one or more count columns.
The helpers here split the text, check that rows are not ragged, convert count columns with
pandas (vectorised) and report bad values by line number and gene, then turn a genes x samples
matrix into one :class:`~gseio._piece.Piece` of CSR rows without stored zeros.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import _open
from .._options import DuplicateGenes
from .._piece import GeneBlock, Piece, check_unique_cells
from .._source import Source
from .._unit import Unit
from ..errors import CorruptFileError, FormatError, InvalidValueError
from ..geo import sample_of
from . import _names
from ._decode import decode_name, decode_names, report

#: What every sniffer may need to reject early: binary content.
BINARY_MARK = b"\0"


def head_lines(head: bytes, limit: int = 50) -> list[bytes]:
    """The complete lines of a sniffing head (the last, possibly cut, line dropped)."""
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    lines = head.split(b"\n", limit)
    if len(lines) > limit or (len(lines) > 1 and not head.endswith(b"\n")):
        lines = lines[:-1]
    return [line.rstrip(b"\r") for line in lines]


def header_fields(head: bytes, *, skip_comments: bool = False, limit: int | None = None) -> list[str]:
    """The first line of ``head`` (after ``#`` lines when asked) split on tabs; ``[]`` if none.

    ``limit``: at most that many fields (sniffers compare a few; a wide header has 100,000s).
    """
    for line in head_lines(head, 20):
        if skip_comments and line.startswith(b"#"):
            continue
        fields = line.split(b"\t") if limit is None else line.split(b"\t", limit)[:limit]
        return [decode_name(f)[0].strip() for f in fields]
    return []


@dataclass(frozen=True, slots=True)
class Table:
    """A parsed tab-separated file: its header (if any) and its data rows as columns."""

    header: list[str] | None
    frame: pd.DataFrame
    first_line: int  # 1-based line number of the first data row, for messages

    def line(self, row: int) -> int:
        """The file's line number of data row ``row`` (0-based)."""
        return self.first_line + row


def load_text(source: Source) -> bytes:
    """The whole decompressed file, without a UTF-8 byte-order mark."""
    data = _open.read_bytes(source)
    return data[3:] if data.startswith(b"\xef\xbb\xbf") else data


def _split_line(data: bytes, start: int) -> tuple[bytes, int]:
    end = data.find(b"\n", start)
    if end < 0:
        return data[start:].rstrip(b"\r"), len(data)
    return data[start:end].rstrip(b"\r"), end + 1


def _check_ragged(body: bytes, n_fields: int, first_line: int, source: Source) -> None:
    """Raise on the first non-blank line whose field count is not ``n_fields`` (vectorised)."""
    arr = np.frombuffer(body, dtype=np.uint8)
    ends = np.flatnonzero(arr == 10)
    if arr.size and arr[-1] != 10:
        ends = np.append(ends, arr.size)
    starts = np.concatenate(([0], ends[:-1] + 1))
    tabs = np.flatnonzero(arr == 9)
    fields = np.searchsorted(tabs, ends) - np.searchsorted(tabs, starts) + 1
    length = ends - starts
    blank = (length == 0) | ((length == 1) & (arr[np.minimum(starts, arr.size - 1)] == 13))
    bad = np.flatnonzero((fields != n_fields) & ~blank)
    if bad.size:
        i = int(bad[0])
        text = body[starts[i] : ends[i]].rstrip(b"\r")[:80].decode("utf-8", "replace")
        raise FormatError(
            f"line {first_line + i}: expected {n_fields} tab-separated columns, got {int(fields[i])}: {text!r}",
            path=source,
        )


def parse_tsv(
    source: Source,
    data: bytes,
    *,
    header: bool,
    skip_comments: bool = False,
    numeric: Sequence[int] = (),
    n_fields: int | None = None,
) -> Table:
    """Parse tab-separated ``data`` into string columns (``numeric`` ones as float64).

    Parameters
    ----------
    source
        The file, for messages.
    data
        Its decompressed bytes.
    header
        Whether the first (non-comment) line names the columns.
    skip_comments
        Skip leading lines that start with ``#``.
    numeric
        Columns parsed as float64 directly (fast path); a value that does not parse is
        reported by line and gene. Other columns stay strings.
    n_fields
        The expected number of columns (default: the header's, else the first line's).

    Raises
    ------
    FormatError
        No data rows, or a row with the wrong number of columns.
    InvalidValueError
        A value of a ``numeric`` column is not a number.
    """
    pos, line_no = 0, 1
    names: list[str] | None = None
    while pos < len(data):
        line, nxt = _split_line(data, pos)
        if (skip_comments and line.startswith(b"#")) or not line.strip():
            pos, line_no = nxt, line_no + 1
            continue
        if header:
            decoded = [decode_name(f) for f in line.split(b"\t")]
            names = [name.strip().strip('"') for name, _ in decoded]
            recoded = [k for k, (_, legacy) in enumerate(decoded) if legacy]
            report(source, recoded, names, line=lambda k, at=line_no: at, what="header fields")
            pos, line_no = nxt, line_no + 1
        if n_fields is None:
            n_fields = len(names) if names is not None else line.count(b"\t") + 1
        break
    body = data[pos:]
    if not body.strip() or n_fields is None:
        raise FormatError("no data rows", path=source)
    _check_ragged(body, n_fields, line_no, source)
    if (nul := body.find(b"\0")) >= 0:  # pandas would end the field there: "5\x003" would be read as 5
        line = line_no + body.count(b"\n", 0, nul)
        raise CorruptFileError(f"line {line} holds a NUL byte: a binary or damaged file", path=source)
    table = Table(names, _read_frame(body, n_fields, set(numeric), line_no, source), line_no)
    return table


def _read_frame(body: bytes, n_fields: int, numeric: set[int], first_line: int, source: Source) -> pd.DataFrame:
    def read(as_float: set[int], encoding: str) -> pd.DataFrame:
        return pd.read_csv(
            io.BytesIO(body),
            sep="\t",
            header=None,
            names=list(range(n_fields)),
            dtype={i: (np.float64 if i in as_float else str) for i in range(n_fields)},
            keep_default_na=False,
            na_values=[],
            quoting=csv.QUOTE_NONE,
            skip_blank_lines=True,
            engine="c",
            encoding=encoding,
        )

    encoding = "utf-8"
    try:
        return read(numeric, encoding)
    except UnicodeDecodeError:
        encoding = "latin-1"  # one character per byte: the bytes are recovered, then decoded name by name
    except ValueError:
        pass
    try:
        frame = read(set(), encoding)  # every column as text, to say which value did not parse
    except ValueError as e:  # pandas also ends lines at a lone carriage return, which the check above does not
        raise FormatError(f"cannot be split into {n_fields} tab-separated columns: {e}", path=source) from e
    if encoding == "latin-1":  # a name that is not UTF-8 must not change how the others read: decode each
        for col in range(n_fields):
            if col not in numeric:
                names, recoded = decode_names([v.encode("latin-1") for v in frame[col]])
                report(source, recoded, names, line=lambda k: first_line + k, what=f"names in column {col + 1}")
                frame[col] = names
    for col in sorted(numeric):
        frame[col] = to_numbers(frame, col, first_line, source)
    return frame


def to_numbers(frame: pd.DataFrame, col: int, first_line: int, source: Source) -> np.ndarray:
    """Convert a text column to float64, naming the first value that is not a number."""
    values = frame[col]
    if values.dtype == np.float64:
        return values.to_numpy()
    converted = pd.to_numeric(values.str.strip(), errors="coerce").to_numpy(dtype=np.float64)
    bad = np.isnan(converted) & ~values.str.strip().str.lower().isin(["nan"]).to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidValueError(
            f"line {first_line + i} (gene {frame[0].iloc[i]!r}): value {values.iloc[i]!r} in column {col + 1} "
            "is not a number",
            path=source,
        )
    return converted


def check_counts(
    matrix: np.ndarray,
    genes: np.ndarray,
    source: Source,
    *,
    first_line: int | None,
    what: str = "count",
    columns: Sequence[int] | None = None,
) -> None:
    """Raise :class:`InvalidValueError` on the first NaN, infinite or negative value (genes x samples).

    ``first_line`` is the file's line number of row 0 (``None`` for binary files: rows are
    then named by their 1-based position); ``columns`` the file's (1-based) column of each
    column of ``matrix``, named in the message when given.
    """
    bad = ~np.isfinite(matrix) | (matrix < 0)
    if bad.any():
        row, col = (int(v[0]) for v in np.nonzero(bad))
        where = f"entry {row + 1}" if first_line is None else f"line {first_line + row}"
        column = "" if columns is None else f", column {columns[col]}"
        raise InvalidValueError(
            f"{where} (gene {genes[row]!r}{column}): {what} {float(matrix[row, col])!r} is NaN, infinite or "
            "negative; counts must be finite and >= 0",
            path=source,
        )


def gene_block(
    names: np.ndarray,
    source: Source,
    *,
    policy: DuplicateGenes,
    annotations: dict[str, np.ndarray] | None = None,
    first_line: int | None = 1,
    where: Callable[[int], str] | None = None,
    notes: dict[str, str] | None = None,
) -> tuple[GeneBlock, np.ndarray | None]:
    """The :class:`GeneBlock` of ``names`` and the rows kept (``None``: all) under the duplicate policy.

    Names are checked and stripped first (:func:`gseio.readers._names.clean`); ``where(k)`` says
    where name ``k`` sits (default: line ``first_line + k``, or entry ``k + 1`` when ``first_line``
    is ``None``: a binary file). What stripping did goes to ``notes["gene_names"]``.
    """
    if where is None:
        where = (lambda k: f"entry {k + 1}") if first_line is None else (lambda k: f"line {first_line + k}")
    names = np.asarray(names, dtype=object)
    empty = np.flatnonzero(pd.Series(names, dtype=object).fillna("").str.strip().to_numpy() == "")
    if empty.size:
        raise FormatError(f"{where(int(empty[0]))} has an empty gene name", path=source)
    cleaned = _names.clean(names, what="gene name", path=source, where=where)
    if notes is not None:
        cleaned.into(notes, "gene_names")
    names = cleaned.names
    duplicated = pd.Index(names).duplicated()
    n_dup = int(duplicated.sum())
    if n_dup and policy == "error":
        dups = pd.unique(names[duplicated])
        listed = ", ".join(map(str, dups[:5])) + (", ..." if len(dups) > 5 else "")
        raise FormatError(
            f"{n_dup} rows repeat a gene name ({listed}); pass duplicate_genes='sum' or 'first'",
            path=source,
        )
    keep = np.flatnonzero(~duplicated) if n_dup and policy == "first" else None
    annotations = annotations or {}
    if keep is not None:
        names = names[keep]
        annotations = {k: np.asarray(v)[keep] for k, v in annotations.items()}
    return GeneBlock.from_names(names, n_duplicates=n_dup, annotations=annotations), keep


def make_piece(
    source: Source,
    cells: list[str],
    block: GeneBlock,
    matrix: np.ndarray,
    *,
    obs: dict[str, np.ndarray] | None = None,
    values: str = "counts",
    notes: dict[str, str] | None = None,
    where: Callable[[int], str] | None = None,
) -> Piece:
    """One :class:`Piece` from a dense genes x samples float64 matrix (zeros not stored).

    The cell ids are checked and stripped (:func:`gseio.readers._names.clean`); ``where(k)`` says
    where id ``k`` comes from (default: the file or folder name, which names one-sample outputs).
    """
    notes = dict(notes or {})
    cleaned = _names.clean(
        cells, what="cell id", path=source, where=where or (lambda k: "the file or folder name")
    )
    cleaned.into(notes, "cell_names")
    if cleaned.note is not None:  # ids that differed by their blanks only are one id now
        check_unique_cells(list(cleaned.names), source, where or (lambda k: f"cell {k + 1}"))
    cells = list(cleaned.names)
    cells_by_genes = np.ascontiguousarray(
        np.asarray(matrix, dtype=np.float64).reshape(len(block.names), len(cells)).T
    )
    mask = cells_by_genes != 0
    indptr = np.zeros(len(cells) + 1, dtype=np.int64)
    np.cumsum(mask.sum(axis=1), out=indptr[1:])
    return Piece(
        source=str(source),
        cells=list(cells),
        genes=block,
        indptr=indptr,
        indices=np.nonzero(mask)[1].astype(np.int32),
        data=cells_by_genes[mask],
        obs={k: np.asarray(v) for k, v in (obs or {}).items()},
        values=values,
        notes=notes,
    )


def folder_units(
    sources: list[Source], *, format: str, roles: dict[str, str], preference: Sequence[str]
) -> tuple[list[Unit], list[Source]]:
    """One unit per output folder of a quantifier, from the files' names.

    ``roles`` maps a file name (without compression suffix, lower case) to its role;
    the first role of ``preference`` a folder has is the unit's main file, the others
    ride along (so that one sample is never read twice). Folders holding none of the
    preferred roles (a ``run_info.json`` alone) form no unit.
    """
    folders: dict[str, dict[str, Source]] = defaultdict(dict)
    for source in sources:
        if (role := roles.get(_open.strip_compression_suffix(source.name).lower())) is not None:
            folders[source.parent][role] = source
    units, claimed = [], set()
    for files in folders.values():
        main = next((files[role] for role in preference if role in files), None)
        if main is None:
            continue
        folder = folder_name(main)
        others = {role: s for role, s in files.items() if s is not main}
        sample = sample_of(folder) if folder else sample_of(main.name)
        units.append(Unit(format=format, sources={"data": main, **others}, name=main.rel, sample=sample))
        claimed.update(s.rel for s in files.values())
    return units, [s for s in sources if s.rel not in claimed]


def folder_name(source: Source) -> str:
    """The folder a source sits in: the last folder of its relative path, else (plain files) on disk."""
    if source.parent:
        return source.parent.rsplit("/", 1)[-1]
    return "" if source.in_tar else source.path.parent.name


def strip_suffix(name: str, suffixes: Sequence[str]) -> str:
    """Drop the first of ``suffixes`` that ends ``name`` (case-insensitive), leaving it non-empty."""
    lower = name.lower()
    for suffix in suffixes:
        if lower.endswith(suffix.lower()) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name
