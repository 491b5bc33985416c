"""Gene tables (ids, versions, symbols, biotypes, lengths) from a GTF or a ready length table.

A gene's length is the number of bases covered by the union of its exons, which is
featureCounts' ``Length`` and the definition of the platform's ``Gene_length`` tables.
The GTF is streamed in blocks through Arrow's CSV parser; only the rows of the wanted
feature are kept, attributes are cut from Arrow's buffers with numpy, and the unions are
merged with one running maximum, so a full GENCODE GTF (3 million lines) takes seconds and
little more memory than its exons. :func:`fetch_ensembl_gtf` downloads Ensembl's GTFs.
"""

from __future__ import annotations

import io
import logging
import os
import re
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd

from .. import _open
from .._source import Source
from ..errors import EmptyFileError, FormatError

logger = logging.getLogger(__name__)

__all__ = ["gene_table", "union_lengths"]

_GTF_FIELDS = ("seqname", "source", "feature", "start", "end", "score", "strand", "frame", "attribute")
_BLOCK = 4 << 20  # bytes per parsed block: big enough for Arrow's speed, small enough to stream
_WINDOW = 32  # longest attribute value read by the fast path; longer ones go through the regex
# a stable id, a ".version" suffix and GENCODE's "_PAR_Y" tag for the Y copy of a pseudo-autosomal gene
_VERSIONED = r"^(?P<stable>[A-Za-z]+\d+)\.(?P<version>\d+)(?P<par>_PAR_Y)?$"
# header names of a ready table, lower-cased without "_": the platform's own and common variants
_TABLE_NAMES = {
    "geneid": "id", "ensemblid": "id", "genename": "name", "genesymbol": "name", "symbol": "name",
    "genelength": "length", "length": "length",
}  # fmt: skip


def _attr_pattern(names: str) -> str:
    # one attribute's value, quoted or not, anchored at an attribute boundary so that
    # ``gene_id`` never matches inside ``havana_gene_id``; a leading space is allowed
    return rf'(?:^|;)\s*(?:{names})\s+"?(?P<v>[^";]*?)"?\s*(?:;|$)'


def gene_table(source: str | os.PathLike[str] | Source, *, feature: str = "exon") -> pd.DataFrame:
    """One row per gene of a GTF (plain or compressed), or of a ready gene length table.

    Parameters
    ----------
    source
        A GTF (GENCODE, Ensembl, 10x refdata, ...; ``#`` header lines are skipped, gene and
        transcript lines are not needed) or a table with the platform's columns ``Gene_ID``,
        ``Gene_name``, ``Gene_length`` (tab- or comma-separated; ``gene_id``/``gene_name``/
        ``length`` and featureCounts' ``Geneid``/``Length`` are accepted too).
    feature
        The GTF feature whose union makes a gene's length (``"CDS"`` for coding length).

    Returns
    -------
    A data frame indexed by the gene id without its version (index name ``gene_id``), in
    order of first appearance, with columns

    - ``gene_id_version``: the versioned id: the ``gene_id`` attribute when it carries a
      version (GENCODE's ``ENSG00000141510.17``), else id + ``.`` + the ``gene_version``
      attribute (Ensembl GTFs), else missing;
    - ``gene_symbol``: the ``gene_name`` attribute;
    - ``biotype``: the ``gene_biotype`` or ``gene_type`` attribute;
    - ``chromosome``: the sequence name (``;``-joined, in order of appearance, for a gene
      whose exons lie on several);
    - ``length``: bases covered by the union of the gene's exons, overlaps between
      transcripts counted once (featureCounts' ``Length``).

    Text columns have the ``"string"`` dtype and ``length`` the nullable ``"Int64"``
    dtype; a missing value is ``pandas.NA`` (a ready table has no biotype or chromosome).
    GENCODE's ``_PAR_Y`` genes stay distinct from their chromosome X copies:
    ``ENSG00000002586.20_PAR_Y`` has the id ``ENSG00000002586_PAR_Y``.

    Raises
    ------
    FormatError
        The file is neither a GTF nor a gene table (the message names the line), a
        ``feature`` row has no ``gene_id``, no row has the feature, or a table repeats an
        id with different lengths.
    EmptyFileError, CorruptFileError
        The file is empty, or its compression is truncated or corrupt.
    """
    source = _open.as_source(source)
    head = _open.read_bytes(source, limit=1 << 16)
    kind, line_no = _sniff(head, source)
    if kind == "table":
        return _read_table(source, header_line=line_no)
    return _read_gtf(source, feature)


def _sniff(head: bytes, source: Source) -> tuple[str, int]:
    """``("gtf"|"table", line number of the first data line)`` judged from the file's start."""
    lines = head.decode("utf-8", errors="replace").splitlines()
    for number, line in enumerate(lines[:-1] if len(head) == 1 << 16 else lines, start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.rstrip("\r").split("\t")
        if len(fields) == 9 and fields[3].isdigit() and fields[4].isdigit():
            return "gtf", number
        header = {_TABLE_NAMES.get(f.strip().strip('"').lower().replace("_", "")) for f in re.split("[\t,]", line)}
        if {"id", "length"} <= header:
            return "table", number
        raise FormatError(
            f"line {number} is neither a GTF line (9 tab-separated fields with numeric start and end) "
            f"nor the header of a gene table with Gene_ID and Gene_length columns: {line[:120]!r}",
            path=source,
        )
    raise EmptyFileError("the file holds no GTF lines and no gene table header", path=source)


def _read_gtf(source: Source, feature: str) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    def on_invalid(row: Any) -> str:
        # header/comment lines have fewer than 9 fields; anything else is an error, located below
        return "skip" if row.text.startswith("#") else "error"

    read = pacsv.ReadOptions(column_names=list(_GTF_FIELDS), block_size=_BLOCK)
    parse = pacsv.ParseOptions(delimiter="\t", quote_char=False, invalid_row_handler=on_invalid)
    convert = pacsv.ConvertOptions(
        include_columns=["seqname", "feature", "start", "end", "attribute"],
        column_types={"start": pa.int64(), "end": pa.int64(), "seqname": pa.string(), "feature": pa.string()},
        strings_can_be_null=False,
    )
    parts: list[tuple[Any, ...]] = []
    workers = min(4, os.cpu_count() or 1)
    try:
        with _open.open_decompressed(source) as fh, ThreadPoolExecutor(workers) as pool:
            pending: deque[Any] = deque()
            # Arrow parses the next block while the pool reads attributes from earlier ones;
            # the bounded queue keeps memory to a few blocks
            for batch in pacsv.open_csv(fh, read_options=read, parse_options=parse, convert_options=convert):
                pending.append(pool.submit(_parse_block, batch, feature))
                if len(pending) > 2 * workers:
                    parts.append(pending.popleft().result())
            parts.extend(f.result() for f in pending)
    except (pa.ArrowInvalid, _BadRows) as e:
        raise FormatError(_locate_bad_line(source, feature) or f"not a GTF: {e}", path=source) from e
    parts = [p for p in parts if len(p[0])]
    if not parts:
        raise FormatError(f"no {feature!r} lines: not a GTF, or choose another feature=", path=source)
    return _assemble(parts, source)


class _BadRows(Exception):
    """A block holds a row that parses but is not valid GTF (no gene_id, end before start)."""


def _parse_block(batch: Any, feature: str) -> tuple[Any, ...]:
    """Rows of ``feature`` in one block: (gene ids, seqnames, starts, ends, gene-level attributes)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    rows = np.flatnonzero(pc.equal(batch.column("feature"), feature).to_numpy(zero_copy_only=False))
    attrs = batch.column("attribute")
    gene_ids = _attribute(attrs, "gene_id", rows)
    starts, ends = batch.column("start").to_numpy()[rows], batch.column("end").to_numpy()[rows]
    if gene_ids.null_count or (starts < 1).any() or (ends < starts).any():
        raise _BadRows
    # gene-level attributes are the same on every row of a gene: read them from its first row only
    first = np.unique(pc.dictionary_encode(gene_ids).indices.to_numpy(), return_index=True)[1]
    heads = attrs.take(pa.array(rows[first]))
    genes = {"gene_id": gene_ids.take(pa.array(first))}
    genes.update((k, _attribute(heads, f"gene_{k}")) for k in ("version", "name", "biotype", "type"))
    genes["biotype"] = pc.coalesce(genes["biotype"], genes.pop("type"))  # Ensembl's name, GENCODE's name
    return gene_ids, batch.column("seqname").take(pa.array(rows)), starts, ends, pa.table(genes)


def _attribute(values: Any, key: str, rows: np.ndarray | None = None) -> Any:
    """Attribute ``key`` of the ``rows`` (default: all) of an Arrow string array (null where absent).

    A substring search finds the key and the value is cut from the raw UTF-8 buffer through
    a fixed window, ten times faster than a regular expression with a capture group; the rows
    this cannot read (odd spacing, a value longer than the window, the key seen first inside
    another name such as ``havana_gene_id``) go through the regular expression instead.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    rows = np.arange(len(values)) if rows is None else rows
    found = pc.find_substring(values, key + " ").to_numpy()[rows]
    offsets = np.frombuffer(values.buffers()[1], np.int64 if pa.types.is_large_string(values.type) else np.int32)
    offsets = offsets[values.offset :]
    data = np.frombuffer(values.buffers()[2] or b"\0", np.uint8)
    last = len(data) - 1
    at, row_end = offsets[rows] + found, offsets[rows + 1]  # where the key starts; where its row ends
    boundary = (found == 0) | np.isin(data[np.clip(at - 1, 0, last)], (9, 32, 59))  # tab, space, ";"
    begin = at + len(key) + 1
    quoted = (data[np.minimum(begin, last)] == 34) & (begin < row_end)
    begin += quoted
    window = begin[:, None] + np.arange(_WINDOW, dtype=begin.dtype)
    chars = data[np.minimum(window, last)]
    chars[window >= row_end[:, None]] = 0  # past the row
    stop = np.where(quoted[:, None], chars == 34, (chars == 59) | (chars == 32) | (chars == 0))
    length = stop.argmax(axis=1)
    ok = (found >= 0) & boundary & stop[np.arange(len(rows)), length]
    length = np.where(ok, length, 0).astype(np.int32)
    out_offsets = np.zeros(len(rows) + 1, np.int32)
    np.cumsum(length, out=out_offsets[1:])
    take = np.repeat(begin - out_offsets[:-1], length) + np.arange(out_offsets[-1])
    valid = None if ok.all() else pa.array(ok).buffers()[1]
    out = pa.StringArray.from_buffers(len(rows), pa.py_buffer(out_offsets), pa.py_buffer(data[take]), valid)
    slow = np.flatnonzero((found >= 0) & ~ok)
    if len(slow):
        merged = out.to_numpy(zero_copy_only=False)
        matches = pc.extract_regex(values.take(pa.array(rows[slow])), _attr_pattern(key))
        merged[slow] = pc.struct_field(matches, [0]).to_numpy(zero_copy_only=False)
        out = pa.array(merged, type=pa.string())
    return out


def _assemble(parts: list[tuple[Any, ...]], source: Source) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.compute as pc

    gene_enc = pc.dictionary_encode(pa.concat_arrays([p[0] for p in parts]))
    seq_enc = pc.dictionary_encode(pa.concat_arrays([p[1] for p in parts]))
    n_genes, n_seqs = len(gene_enc.dictionary), len(seq_enc.dictionary)
    # the union is per gene and sequence: a gene's exons on chrX and chrY never overlap
    pairs = gene_enc.indices.to_numpy().astype(np.int64) * n_seqs + seq_enc.indices.to_numpy()
    starts, ends = np.concatenate([p[2] for p in parts]), np.concatenate([p[3] for p in parts])
    pairs, lengths = union_lengths(pairs, starts, ends)
    pair_gene, pair_seq = np.divmod(pairs, n_seqs)
    length = np.bincount(pair_gene, weights=lengths, minlength=n_genes).astype(np.int64)
    seqnames = np.asarray(seq_enc.dictionary.to_pylist(), dtype=object)
    firsts = np.flatnonzero(np.r_[True, pair_gene[1:] != pair_gene[:-1]])
    chromosome = seqnames[pair_seq[firsts]]
    for g in np.flatnonzero(np.diff(np.r_[firsts, len(pairs)]) > 1):  # the rare gene on several sequences
        chromosome[g] = ";".join(seqnames[pair_seq[pair_gene == g]])

    info = pa.concat_tables([p[4] for p in parts])
    code = pc.index_in(info.column("gene_id"), value_set=gene_enc.dictionary).to_numpy()
    info = info.take(pa.array(np.unique(code, return_index=True)[1]))  # each gene's first row, in code order
    return _finish(gene_enc.dictionary, info.column("version"), info.column("name"), info.column("biotype"),
                   chromosome, length, source)  # fmt: skip


def union_lengths(keys: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bases covered by the union of closed intervals ``[start, end]`` per key.

    Parameters
    ----------
    keys, starts, ends
        Integer arrays of one entry per interval (1-based, inclusive ends, as in a GTF).

    Returns
    -------
    The distinct keys (sorted) and, for each, the number of positions covered at least once.
    """
    order = np.lexsort((starts, keys))
    keys, starts, ends = keys[order], starts[order].astype(np.int64), ends[order].astype(np.int64)
    is_first = np.r_[True, keys[1:] != keys[:-1]] if len(keys) else np.zeros(0, bool)
    # shifting every group above the previous one lets one global running maximum of the ends
    # stand for a running maximum within each group
    shift = (np.cumsum(is_first) - 1) * (int(ends.max(initial=0)) + 2)
    s, e = starts + shift, ends + shift
    reach = np.empty_like(e)  # the furthest end among the group's earlier intervals
    reach[1:] = np.maximum.accumulate(e)[:-1]
    reach[is_first] = s[is_first] - 1
    new = np.maximum(e - np.maximum(s - 1, reach), 0)  # positions this interval adds
    at = np.flatnonzero(is_first)
    return keys[at], np.add.reduceat(new, at) if len(new) else new


def _finish(
    raw_ids: Any, version: Any, name: Any, biotype: Any, chromosome: Any, length: Any, source: Source
) -> pd.DataFrame:
    """The result frame: ids split from their versions, string and Int64 dtypes, unique index."""
    import pyarrow.compute as pc

    raw_ids = _strings(raw_ids)
    parts = pc.extract_regex(raw_ids, _VERSIONED)  # null where the id carries no version
    stable, par = pc.struct_field(parts, [0]), pc.struct_field(parts, [2])
    ids = pc.coalesce(pc.binary_join_element_wise(stable, par, ""), raw_ids)
    id_version = pc.if_else(
        pc.is_valid(stable), raw_ids, pc.binary_join_element_wise(raw_ids, _strings(version), ".")
    )
    columns = {"gene_id_version": id_version, "gene_symbol": name, "biotype": biotype, "chromosome": chromosome}
    frame = pd.DataFrame(
        {k: pd.array(_strings(v).to_numpy(zero_copy_only=False), dtype="string") for k, v in columns.items()},
        index=pd.Index(pd.array(ids.to_numpy(zero_copy_only=False), dtype="string"), name="gene_id"),
    )
    frame["length"] = pd.array(length, dtype="Int64")
    dup = frame.index[frame.index.duplicated()]
    if len(dup):
        raise FormatError(f"gene {dup[0]!r} is listed more than once (several versions or lengths)", path=source)
    return frame


def _strings(values: Any) -> Any:
    """An Arrow string array with empty strings (and pandas' missing values) as nulls."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    values = pa.array(values, type=pa.string(), from_pandas=True)
    return pc.if_else(pc.equal(values, ""), None, values)


def _read_table(source: Source, *, header_line: int) -> pd.DataFrame:
    data = _open.read_bytes(source)
    header = data.decode("utf-8-sig", errors="replace").splitlines()[header_line - 1]
    table = pd.read_csv(
        io.BytesIO(data), sep="\t" if "\t" in header else ",", skiprows=header_line - 1, dtype=str,
        keep_default_na=False, encoding="utf-8-sig",
    )  # fmt: skip
    roles: dict[str, str] = {}
    for column in table.columns:
        role = _TABLE_NAMES.get(column.strip().lower().replace("_", ""))
        roles.setdefault(role or "", column)
    missing_values = {"", "NA", "nan", "NaN", "notAvailable", "None"}
    ids = table[roles["id"]].str.strip()
    raw = table[roles["length"]].str.strip()
    absent = raw.isin(missing_values)
    length = pd.to_numeric(raw.where(~absent), errors="coerce")
    bad = (~absent & (length.isna() | (length < 0) | (length % 1 != 0))) | ids.isin(missing_values)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise FormatError(
            f"line {header_line + 1 + row}: gene {ids.iloc[row]!r} has length {raw.iloc[row]!r}; "
            "a length must be a whole number of bases (or empty / NA / notAvailable) and every row needs an id",
            path=source,
        )
    names = table[roles["name"]].str.strip() if "name" in roles else pd.Series(pd.NA, index=table.index)
    frame = pd.DataFrame({"id": ids, "name": names.mask(names.isin(missing_values)), "length": length})
    frame = frame.drop_duplicates()
    none = [pd.NA] * len(frame)
    return _finish(pd.Index(frame["id"]), none, frame["name"], none, none, frame["length"].to_numpy(), source)


def _locate_bad_line(source: Source, feature: str) -> str | None:
    """The first line that is not valid GTF, described for an error message (the slow path)."""
    with _open.open_decompressed(source) as fh:
        for number, raw in enumerate(fh, start=1):
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if not line or line.startswith("#"):
                continue
            f = line.split("\t")
            if len(f) != 9:
                why = f"has {len(f)} tab-separated fields, a GTF line has 9"
            elif not (f[3].isdigit() and f[4].isdigit()) or int(f[3]) < 1 or int(f[4]) < int(f[3]):
                why = "has no valid start and end (whole numbers, 1 <= start <= end)"
            elif f[2] == feature and not re.search(_attr_pattern("gene_id"), f[8]):
                why = f"is a {feature!r} line without a gene_id attribute"
            else:
                continue
            return f"not a valid GTF: line {number} {why}: {line[:120]!r}"
    return None


# --- downloading Ensembl GTFs ------------------------------------------------------------------
