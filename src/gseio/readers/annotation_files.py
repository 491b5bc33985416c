"""Files that sit in GEO folders but are not expression data: recognised by content, set aside.

GEO metadata (SOFT records, series matrix files), gene annotations (GTF) and
transcript-to-gene tables are often downloaded next to the counts, under names that
do not give them away (``GSM11805.txt.gz``). They are recognised from their content
and listed as ignored with the reason, instead of failing detection or, worse, being
read as counts. Reading GEO metadata into ``obs`` is a later step.
"""

from __future__ import annotations

import re

from .._registry import FormatSpec, register_format
from .._source import Source
from .._unit import ReadOptions, Unit
from ..errors import FormatError

_SOFT = re.compile(rb"^\^(DATABASE|SERIES|SAMPLE|PLATFORM)\s*=", re.MULTILINE)
_SERIES_MATRIX = re.compile(rb"^!(Series|Sample)_\w+\t", re.MULTILINE)
_GTF_FEATURES = {b"gene", b"transcript", b"exon", b"CDS", b"start_codon", b"stop_codon", b"UTR",
                 b"five_prime_utr", b"three_prime_utr", b"Selenocysteine"}  # fmt: skip
_NUMBER = re.compile(rb"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_TRANSCRIPT_ID = re.compile(rb"^(ENS[A-Z]*T\d{11}(\.\d+)?|FBtr\d+|[NX][MR]_\d+(\.\d+)?)$")


def _lines(head: bytes, n: int = 40) -> list[bytes]:
    lines = head.split(b"\n", 4 * n)[: 4 * n]  # never split more than needed: sniffing must be cheap
    if len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut
    return [line.rstrip(b"\r") for line in lines if line.strip() and not line.startswith(b"#")][:n]


def sniff_geo_soft(head: bytes, source: Source) -> float:
    """Score ``head`` as a GEO SOFT record (``^SAMPLE = GSM...`` and ``!Sample_...`` lines)."""
    start = head.lstrip(b"\xef\xbb\xbf")[:200]
    return 1.0 if _SOFT.match(start) else 0.0


def sniff_series_matrix(head: bytes, source: Source) -> float:
    """Score ``head`` as a GEO series matrix file (``!Series_title`` ...)."""
    return 1.0 if _SERIES_MATRIX.match(head.lstrip(b"\xef\xbb\xbf")[:200]) else 0.0


def sniff_gtf(head: bytes, source: Source) -> float:
    """Score ``head`` as a GTF/GFF gene annotation (9 columns, feature types, attributes)."""
    rows = [line.split(b"\t") for line in _lines(head)]
    if not rows:
        return 0.0
    good = sum(1 for r in rows if len(r) == 9 and r[2] in _GTF_FEATURES and r[3].isdigit() and r[4].isdigit())
    return 1.0 if good >= 0.9 * len(rows) else 0.0


def sniff_tx2gene(head: bytes, source: Source) -> float:
    """Score ``head`` as a transcript-to-gene table (transcript IDs, then gene IDs or names)."""
    rows = _lines(head)
    if len(rows) < 2:
        return 0.0
    sep = b"\t" if b"\t" in rows[0] else b","
    body = [r.split(sep) for r in rows[1:]]
    if not all(2 <= len(r) <= 4 for r in body):
        return 0.0
    # the second column names genes: a numeric one would make this a transcript-level count table
    mapped = sum(1 for r in body if _TRANSCRIPT_ID.match(r[0].strip(b'"')) and not _NUMBER.match(r[1].strip()))
    return 1.0 if mapped >= 0.9 * len(body) else 0.0


def _not_data(unit: Unit, options: ReadOptions) -> list:
    raise FormatError(f"{unit.format} files are not expression data", path=unit.main)


for _name, _description, _sniff in (
    ("geo_soft", "GEO SOFT record (metadata)", sniff_geo_soft),
    ("geo_series_matrix", "GEO series matrix (metadata)", sniff_series_matrix),
    ("gtf", "GTF gene annotation", sniff_gtf),
    ("tx2gene", "transcript-to-gene table", sniff_tx2gene),
):
    register_format(FormatSpec(name=_name, description=_description, read_unit=_not_data, sniff=_sniff, kind="qc"))
