"""Metadata and annotation files in GEO folders are recognised by content and set aside, never read as counts."""

from __future__ import annotations

import shutil

import pytest

import gseio

CASES = {
    "geo_soft/GEOparse/GSM2795971.txt": "geo_soft",
    "geo_soft/GEOquery/GSM11805.txt.gz": "geo_soft",  # a full Affymetrix table: must not pass for counts
    "geo_soft/GEOparse/soft_ex_family.txt": "geo_soft",
    "geo_soft/GEOparse/GPL4133.txt": "geo_soft",
    "geo_series_matrix/SeriesMatrixIO/GSE285754_series_matrix.txt.gz": "geo_series_matrix",
    "gtf/pytximport/annotation.gtf": "gtf",
    "gtf/htseq/Saccharomyces_cerevisiae.SGD1.01.56.gtf.gz": "gtf",
    "tx2gene/kb_python/transcripts_to_genes.txt": "tx2gene",
    "tx2gene/pytximport/transcript_to_gene_map.csv": "tx2gene",
    "tx2gene/sleuth/target_mapping.txt": "tx2gene",
}


@pytest.mark.parametrize(("name", "expected"), CASES.items())
def test_detected_by_content(realdata, name, expected):
    assert gseio.detect_format(realdata / name) == expected


def test_set_aside_with_the_reason_when_next_to_counts(realdata, tmp_path):
    shutil.copyfile(realdata / "htseq" / "bamfile_no_qualities.tsv", tmp_path / "GSM1_counts.tsv")
    for i, name in enumerate(CASES):  # renamed so that only their content can tell
        shutil.copyfile(realdata / name, tmp_path / f"extra_{i}.txt{'.gz' if name.endswith('.gz') else ''}")
    adata = gseio.read_gse_dir(tmp_path)
    assert adata.obs["source_file"].tolist() == ["GSM1_counts.tsv"]
    reasons = dict(zip(adata.uns["gseio"]["ignored_files"], adata.uns["gseio"]["ignored_reasons"], strict=True))
    assert len(reasons) == len(CASES)
    assert reasons["extra_0.txt"] == "GEO SOFT record (metadata): not expression data"
    assert reasons["extra_5.txt"] == "GTF gene annotation: not expression data"


def test_a_transcript_level_count_table_is_not_taken_for_a_mapping(tmp_path):
    (tmp_path / "t.tsv").write_text("ENST00000424215\t12\nENST00000511072\t0\nENST00000456328\t3\n")
    assert gseio.detect_format(tmp_path / "t.tsv") == "cell_table"
