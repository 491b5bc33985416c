"""featureCounts count tables (``featurecounts``) and ``.summary`` files (``featurecounts_summary``, QC)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import gseio
from gseio._source import Source
from gseio.errors import FormatError, InvalidValueError
from gseio.readers.featurecounts import clean_sample_name, read_featurecounts, sniff, sniff_summary

COUNTS = "featurecounts/GenomicsAotearoa/yeast_counts_all_chr.txt"
SUMMARIES = [
    "featurecounts/multiqc/SRR1067503_1_trimmed_star_aligned.bam_counts.txt.summary",
    "featurecounts/multiqc/Test1.counts.summary",
    "featurecounts/multiqc/multiple_files.counts.txt.summary",
]


def _pandas(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", comment="#", index_col=0)


def test_counts_detected_and_read(realdata):
    path = realdata / COUNTS
    assert gseio.detect_format(path) == "featurecounts"
    ref = _pandas(path)
    adata = read_featurecounts(path)
    assert adata.shape == (6, 7127)
    assert list(adata.obs_names) == ["SRR014335", "SRR014336", "SRR014337", "SRR014339", "SRR014340", "SRR014341"]
    assert list(adata.var_names) == ref.index.tolist()
    counts = ref.iloc[:, 5:].to_numpy(dtype=float)
    np.testing.assert_array_equal(adata.X.toarray(), counts.T)
    np.testing.assert_array_equal(np.asarray(adata.X.sum(axis=1)).ravel(), counts.sum(axis=0))
    np.testing.assert_array_equal(adata.var["length"].to_numpy(), ref["Length"].to_numpy(dtype=float))
    notes = adata.uns["gseio"]["notes"][0]
    assert "SRR014335 <- ../STAR/SRR014335-Aligned.out.sam" in notes


def test_multi_exon_location_collapsed(realdata):
    path = realdata / COUNTS
    ref = _pandas(path)
    adata = read_featurecounts(path)
    gene = "YDL219W"  # Chr IV;IV, Start 65242;65378, End 65306;65765
    assert ref.loc[gene, "Chr"] == "IV;IV"
    row = adata.var.loc[gene]
    assert row["chromosome"] == "IV"
    assert row["strand"] == "+"
    assert row["start"] == min(int(v) for v in ref.loc[gene, "Start"].split(";"))
    assert row["end"] == max(int(v) for v in ref.loc[gene, "End"].split(";"))


@pytest.mark.parametrize("rel", SUMMARIES)
def test_summaries_detected_as_qc(realdata, rel):
    path = realdata / rel
    assert gseio.detect_format(path) == "featurecounts_summary"
    assert sniff(path.read_bytes(), Source.file(path)) == 0.0


def test_summary_not_readable_as_counts(realdata):
    with pytest.raises(FormatError, match="summary"):
        gseio.read(realdata / SUMMARIES[0], format="featurecounts_summary")


def test_summary_totals(realdata):
    # the real .summary files come from other runs than the counts table (no public pair exists, see
    # SOURCES.md): check that they are the tool's own totals, as a reader of them would see
    ref = pd.read_csv(realdata / SUMMARIES[2], sep="\t", index_col=0)
    assert ref.shape == (11, 9)
    assert ref.loc["Assigned"].iloc[0] == 1239096


def test_read_gse_dir_lists_summaries_as_ignored(realdata, tmp_path):
    shutil.copy(realdata / COUNTS, tmp_path)
    for rel in SUMMARIES:
        shutil.copy(realdata / rel, tmp_path)
    adata = gseio.read_gse_dir(tmp_path)
    assert adata.shape == (6, 7127)
    ignored = set(adata.uns["gseio"]["ignored_files"])
    assert {Path(rel).name for rel in SUMMARIES} <= ignored
    ref = _pandas(realdata / COUNTS)
    np.testing.assert_array_equal(np.asarray(adata.X.sum(axis=1)).ravel(), ref.iloc[:, 5:].sum(axis=0).to_numpy())


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("../STAR/SRR014335-Aligned.out.sam", "SRR014335"),
        ("/data/WT_1.Aligned.sortedByCoord.out.markdup.bam", "WT_1"),
        ("sample_3.bam", "sample_3"),
        ("/path/to/data/sample 1.aligned.bam", "sample 1"),
    ],
)
def test_clean_sample_name(path, name):
    assert clean_sample_name(path) == name


def test_colliding_clean_names_fall_back(tmp_path):
    header = "Geneid\tChr\tStart\tEnd\tStrand\tLength\ta/s1.bam\tb/s1.bam\n"
    path = tmp_path / "counts.txt"
    path.write_text("# Program:featureCounts v2.0.0\n" + header + "G1\tI\t1\t10\t+\t10\t1\t2\n")
    adata = read_featurecounts(path)
    assert list(adata.obs_names) == ["a/s1.bam", "b/s1.bam"]


@pytest.mark.parametrize(
    ("row", "error"),
    [
        ("G2\tI\t1\t10\t+\t10\t-3\t2\n", InvalidValueError),
        ("G2\tI\t1\t10\t+\t10\tnan\t2\n", InvalidValueError),
        ("G2\tI\t1\t10\t+\t10\tmany\t2\n", InvalidValueError),
        ("G2\tI\t1\t10\t+\t10\t2\n", FormatError),
    ],
)
def test_bad_values_name_the_file(tmp_path, row, error):
    path = tmp_path / "bad_counts.txt"
    header = "Geneid\tChr\tStart\tEnd\tStrand\tLength\tx.bam\ty.bam\n"
    path.write_text("# Program:featureCounts v2.0.0\n" + header + "G1\tI\t1\t10\t+\t10\t1\t2\n" + row)
    with pytest.raises(error, match=re.escape("bad_counts.txt")):
        gseio.read(path)


def test_sniffers_never_raise_on_junk():
    for junk in (b"", b"\0" * 10, b"Status", b"Status\t\n", b"#\n", b"\xff" * 50):
        assert sniff(junk, Source.file("x")) == 0.0
        assert sniff_summary(junk, Source.file("x")) == 0.0
