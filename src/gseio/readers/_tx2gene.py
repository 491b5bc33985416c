"""Transcript-to-gene maps (``tx2gene``) and summarising transcript counts to genes, for kallisto and salmon.

A map is a table of two or more columns (transcript, gene[, symbol...]), tab-, comma- or
whitespace-separated, with or without a header line, or a GTF (``transcript_id`` ->
``gene_id`` from the attributes of its lines). Counts are summed per gene as tximport does
(``countsFromAbundance="no"``). Transcripts are matched by id, then, for those not found, with
the version suffix dropped on both sides (``ENST00000513300.5`` = ``ENST00000513300``); names
that carry a whole GENCODE FASTA header (``ENST...|ENSG...|...``) are matched by their first
field (tximport's ``ignoreAfterBar``). Transcripts missing from the map are dropped and counted
in the notes, as tximport does.

The map is loaded once per file (a small cache keyed by path, inode, size and change time: the
change time, unlike the modification time, cannot be set back by ``cp -p`` or ``touch -r``), as
every sample of a series uses the same one.
"""

from __future__ import annotations

import csv
import io
import os
import re
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from .. import _open
from .._piece import Piece
from .._source import Source
from .._unit import ReadOptions
from ..errors import FormatError
from . import _quant

__all__ = ["load_tx2gene", "strip_after_bar", "summarise_to_genes", "transcript_piece"]

_HEADER_WORDS = re.compile(r"transcript|^tx|target|^name$|^enstxp", re.IGNORECASE)
_VERSION = re.compile(r"\.\d+$")


def load_tx2gene(path: str | os.PathLike[str]) -> pd.Series:
    """A transcript -> gene :class:`pandas.Series` (index: transcript ids) from a table or a GTF.

    Raises
    ------
    ~gseio.errors.InputError
        The file cannot be read, or holds no transcript/gene pairs.
    """
    path = Path(path)
    try:
        stat = path.stat()
    except OSError as e:
        raise FormatError(f"tx2gene cannot be read: {e}", path=path) from e
    return _load(str(path.resolve()), stat.st_ino, stat.st_ctime_ns, stat.st_size)


@lru_cache(maxsize=4)
def _load(path: str, inode: int, ctime_ns: int, size: int) -> pd.Series:
    source = Source.file(path)
    data = _open.read_bytes(source)
    lines = [line for line in data[:65536].split(b"\n")[:50] if line.strip() and not line.startswith(b"#")]
    if not lines:
        raise FormatError("tx2gene holds no rows", path=source)
    first = lines[0].split(b"\t")
    if len(first) >= 9 and b"gene_id" in first[8]:
        mapping = _from_gtf(data, source)
    else:
        mapping = _from_table(data, lines[0], source)
    mapping = mapping[~mapping.index.duplicated()]
    if mapping.empty:
        raise FormatError("tx2gene holds no transcript -> gene pairs", path=source)
    return mapping


def _from_gtf(data: bytes, source: Source) -> pd.Series:
    body = b"\n".join(line for line in data.split(b"\n") if line and not line.startswith(b"#"))
    frame = pd.read_csv(io.BytesIO(body), sep="\t", header=None, usecols=[2, 8], dtype=str, quoting=csv.QUOTE_NONE)
    attributes = frame[8][frame[8].str.contains("transcript_id", regex=False, na=False)]
    tx = attributes.str.extract(r'transcript_id "?([^";]+)"?', expand=False)
    gene = attributes.str.extract(r'gene_id "?([^";]+)"?', expand=False)
    pairs = pd.DataFrame({"tx": tx, "gene": gene}).dropna()
    if pairs.empty:
        raise FormatError("the GTF has no lines with both transcript_id and gene_id attributes", path=source)
    return pd.Series(pairs["gene"].to_numpy(), index=pd.Index(pairs["tx"].to_numpy()), name="gene_id")


def _from_table(data: bytes, first: bytes, source: Source) -> pd.Series:
    if b"\t" in first:
        sep = "\t"
    elif b"," in first:
        sep = ","
    else:
        sep = r"\s+"
    frame = pd.read_csv(io.BytesIO(data), sep=sep, header=None, dtype=str, comment="#", usecols=[0, 1])
    frame = frame.apply(lambda c: c.str.strip().str.strip('"'))
    head = frame.iloc[0]
    if _HEADER_WORDS.search(str(head[0])) or "gene" in str(head[1]).lower():
        frame = frame.iloc[1:]
    frame = frame.dropna()
    if frame.empty or frame.shape[1] < 2:
        raise FormatError("tx2gene needs two columns: transcript id and gene id", path=source)
    return pd.Series(frame[1].to_numpy(), index=pd.Index(frame[0].to_numpy()), name="gene_id")


def strip_after_bar(ids: np.ndarray) -> tuple[np.ndarray, bool]:
    """The first ``|``-separated field of each id (GENCODE FASTA headers), and whether any had one."""
    ids = np.asarray(ids, dtype=object)
    series = pd.Series(ids, dtype=object)
    has_bar = bool(series.str.contains("|", regex=False).any())
    return (series.str.split("|", n=1).str[0].to_numpy(dtype=object), True) if has_bar else (ids, False)


def summarise_to_genes(
    ids: np.ndarray, counts: np.ndarray, mapping: pd.Series, source: Source, *, tx2gene: object
) -> tuple[np.ndarray, np.ndarray, dict[str, str]]:
    """Sum transcript counts per gene.

    Returns
    -------
    Gene ids (in order of first appearance), their summed counts, and notes on how
    transcripts were matched and how many were dropped.

    Raises
    ------
    ~gseio.errors.FormatError
        No transcript of the file is in the map (wrong map, or ids of another annotation).
    """
    keys, had_bar = strip_after_bar(ids)
    genes = mapping.reindex(keys).to_numpy(dtype=object)
    missing = pd.isna(genes)
    how = "by id"
    if missing.any():
        unversioned = mapping.copy()
        unversioned.index = unversioned.index.str.replace(_VERSION, "", regex=True)
        unversioned = unversioned[~unversioned.index.duplicated()]
        stripped = pd.Series(keys[missing], dtype=object).str.replace(_VERSION, "", regex=True)
        found = unversioned.reindex(stripped).to_numpy(dtype=object)
        if not pd.isna(found).all():
            genes[missing] = found
            how = "by id, else by id without version"
        missing = pd.isna(genes)
    if missing.all():
        raise FormatError(
            f"none of the {len(keys)} transcript ids (e.g. {', '.join(map(str, keys[:3]))}) is in tx2gene "
            f"{tx2gene} (e.g. {', '.join(map(str, mapping.index[:3]))}); pass the map of the annotation the "
            "quantification used",
            path=source,
        )
    notes = {
        "tx2gene": (
            f"summarised {int((~missing).sum())} transcripts to genes with {tx2gene} (counts summed, matched {how}"
            f"{'; ids cut at the first |' if had_bar else ''}); gene lengths are not summarised "
            "(they are per-sample abundance-weighted means in tximport, and var holds one value per gene)"
        )
    }
    if missing.any():
        notes["tx2gene_missing"] = (
            f"{int(missing.sum())} transcripts not in tx2gene were dropped (e.g. "
            f"{', '.join(map(str, keys[missing][:3]))}), {float(counts[missing].sum()):g} counts"
        )
    summed = pd.Series(counts[~missing]).groupby(genes[~missing], sort=False).sum()
    return summed.index.to_numpy(dtype=object), summed.to_numpy(dtype=np.float64), notes


def _gencode_fields(ids: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Transcript ids cut at the first ``|``, and the gene id and name GENCODE headers carry."""
    parts = pd.Series(ids, dtype=object).str.split("|")
    annotations = {}
    if parts.str.len().min() >= 6:  # transcript|gene|havana gene|havana transcript|tx name|gene name|...
        annotations = {
            "gene_id": parts.str[1].to_numpy(dtype=object),
            "gene_name": parts.str[5].to_numpy(dtype=object),
        }
    return parts.str[0].to_numpy(dtype=object), annotations


def transcript_piece(
    source: Source,
    cell: str,
    ids: np.ndarray,
    counts: np.ndarray,
    lengths: dict[str, np.ndarray],
    options: ReadOptions,
    *,
    tool: str,
    first_line: int | None = 1,
    notes: dict[str, str] | None = None,
) -> Piece:
    """A one-cell piece of transcript counts: summarised to genes with ``options.tx2gene``, else per transcript."""
    notes = dict(notes or {})
    if options.tx2gene is not None:
        mapping = load_tx2gene(options.tx2gene)
        genes, values, more = summarise_to_genes(ids, counts, mapping, source, tx2gene=options.tx2gene)
        notes.update(more)
        block, keep = _quant.gene_block(
            genes, source, policy=options.duplicate_genes, notes=notes,
            where=lambda k: f"gene {k + 1} after summarising with tx2gene {options.tx2gene}",
        )  # fmt: skip
        return _quant.make_piece(source, [cell], block, values, notes=notes)
    names, annotations = ids, dict(lengths)
    if pd.Series(ids, dtype=object).str.contains("|", regex=False).any():
        names, extra = _gencode_fields(ids)
        annotations.update(extra)
        notes[f"{tool}_ids"] = "transcript names cut at the first '|' (GENCODE FASTA headers)" + (
            "; var gets their gene_id and gene_name" if extra else ""
        )
    notes[f"{tool}_level"] = (
        "transcript level: no tx2gene given, so var holds transcripts, not genes; pass tx2gene= (a "
        "transcript-to-gene table or a GTF) to sum them per gene"
    )
    block, keep = _quant.gene_block(
        names, source, policy=options.duplicate_genes, annotations=annotations, first_line=first_line,
        notes=notes,
    )  # fmt: skip
    return _quant.make_piece(source, [cell], block, counts if keep is None else counts[keep], notes=notes)
