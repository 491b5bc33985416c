"""GEO naming conventions: GSM accessions and cell ids derived from file names."""

from __future__ import annotations

import re

from ._open import strip_compression_suffix

_GSM = re.compile(r"^(GSM\d+)(?=$|[_.\-\s])")

#: Suffixes of count tables dropped when a cell id is derived from a file name.
TABLE_SUFFIXES = (
    "readspergene.out.tab",  # STAR
    ".genes.results",  # RSEM
    ".isoforms.results",
    ".txt",
    ".sf",  # salmon
    ".h5",
    ".h5ad",
    ".loom",
    ".gct",
    ".mtx",
    ".tsv",
    ".csv",
    ".tab",
    ".counts",
    ".count",
    ".dat",
)


def gsm_accession(name: str) -> str | None:
    """Return the GSM accession a GEO file name starts with, if any.

    >>> gsm_accession("GSM3021397_LM2_G15.hs.raw_counts.txt.gz")
    'GSM3021397'
    >>> gsm_accession("LM2_G15.txt") is None
    True
    """
    match = _GSM.match(name)
    return match.group(1) if match else None


def file_stem(name: str) -> str:
    """Drop the compression suffix and trailing table suffixes from a file name.

    >>> file_stem("GSM3021397_LM2_G15.hs.raw_counts.txt.gz")
    'GSM3021397_LM2_G15.hs.raw_counts'
    >>> file_stem("GSM5000002_P1_A02.counts.txt.gz")
    'GSM5000002_P1_A02'
    >>> file_stem("ERR458837_subsamp_1ReadsPerGene.out.tab")
    'ERR458837_subsamp_1'
    """
    stem = strip_compression_suffix(name)
    while True:
        lower = stem.lower()  # suffixes are lower case
        suffix = next((s for s in TABLE_SUFFIXES if lower.endswith(s) and len(stem) > len(s)), None)
        if suffix is None:
            return stem
        stem = stem[: -len(suffix)].rstrip("_.")


def cell_id_from_name(name: str) -> str:
    """The cell id a file name implies: its stem without a leading GSM accession.

    The accession is the cell's ``sample``; should two cells end up with the same
    id, the assembler prefixes the sample again, giving back the full stem.

    >>> cell_id_from_name("GSM3021397_LM2_G15.hs.raw_counts.txt.gz")
    'LM2_G15.hs.raw_counts'
    >>> cell_id_from_name("GSM3021397.txt.gz")
    'GSM3021397'
    """
    stem = file_stem(name)
    gsm = gsm_accession(stem)
    if gsm is not None and len(stem) > len(gsm) + 1 and stem[len(gsm)] in "_-.":
        return stem[len(gsm) + 1 :]
    return stem


def sample_of(name: str) -> str:
    """The sample a file belongs to: its GSM accession, else its stem."""
    return gsm_accession(name) or file_stem(name)


def sample_of_path(rel: str) -> str:
    """The sample of the file at ``rel``, a path relative to the input.

    A GSM accession in its name, else in the closest folder that has one, else the
    file's stem.

    >>> sample_of_path("GSM1_A/outs/filtered_feature_bc_matrix.h5")
    'GSM1'
    >>> sample_of_path("plate1/cell_A01.txt.gz")
    'cell_A01'
    """
    parts = rel.split("/")
    for part in reversed(parts):
        if (gsm := gsm_accession(part)) is not None:
            return gsm
    return file_stem(parts[-1])
