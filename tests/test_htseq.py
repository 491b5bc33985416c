"""htseq-count outputs with attribute columns or several samples (format ``htseq``)."""

from __future__ import annotations

import gzip
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import gseio
from gseio._source import Source
from gseio.errors import FormatError, InvalidValueError
from gseio.readers.htseq import read_htseq, sniff

# file -> (number of count columns, attribute columns the reader should name)
MULTI = {
    "htseq/multiqc/issue_2114/WTCHG_536273_229157.tsv": (1, {"gene_name": 1, "chromosome": 2}),
    "htseq/yeast_RNASeq_excerpt_withNH_counts_additional_attributes_chromosome_info.tsv": (
        1,
        {"gene_name": 1, "attr_2": 2, "chromosome": 3},
    ),
    "htseq/yeast_RNASeq_excerpt_withNH_counts_twocolumns.tsv": (2, {"gene_name": 1}),
}
TWO_COLUMNS = [
    "htseq/yeast_RNASeq_excerpt_withNH_counts.tsv",
    "htseq/bamfile_no_qualities.tsv",
    "htseq/multiqc/counts.tsv",
]
WITH_HEADER = [
    "htseq/yeast_RNASeq_excerpt_withbarcodes.tsv",
    "htseq/yeast_RNASeq_excerpt_withbarcodes_chromosome_info.tsv",
]


def _pandas(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", header=None, dtype=str, keep_default_na=False)


@pytest.mark.parametrize("rel", sorted(MULTI))
def test_real_files_detected_and_read(realdata, rel):
    path = realdata / rel
    assert gseio.detect_format(path) == "htseq"
    n_counts, attributes = MULTI[rel]
    ref = _pandas(path)
    special = ref[0].str.startswith("__")
    genes = ref[~special]
    adata = read_htseq(path)
    assert adata.shape == (n_counts, len(genes))
    assert list(adata.var_names) == genes[0].tolist()
    counts = genes.iloc[:, -n_counts:].astype(float)
    np.testing.assert_array_equal(adata.X.toarray(), counts.to_numpy().T)
    for name, row in zip(ref[0][special], ref[special].index, strict=True):
        expected = ref.iloc[row, -n_counts:].astype(float).to_numpy()
        np.testing.assert_array_equal(adata.obs["htseq_" + name[2:]].to_numpy(), expected)
    for name, col in attributes.items():
        got = adata.var[name].astype(object).fillna("").astype(str)
        assert got.tolist() == genes[col].tolist()


def test_cell_names(realdata):
    adata = read_htseq(realdata / "htseq/yeast_RNASeq_excerpt_withNH_counts_twocolumns.tsv")
    stem = "yeast_RNASeq_excerpt_withNH_counts_twocolumns"
    assert list(adata.obs_names) == [f"{stem}_1", f"{stem}_2"]
    assert "htseq_cells" in adata.uns["gseio"]["notes"][0]
    single = read_htseq(realdata / "htseq/multiqc/issue_2114/WTCHG_536273_229157.tsv")
    assert list(single.obs_names) == ["WTCHG_536273_229157"]


@pytest.mark.parametrize("rel", TWO_COLUMNS + WITH_HEADER)
def test_other_htseq_layouts_not_claimed(realdata, rel):
    path = realdata / rel
    head = path.read_bytes()[:16384]
    assert sniff(head, Source.file(path)) == 0.0


def test_star_file_not_claimed(realdata):
    path = realdata / "star/ERR458837_subsamp_1ReadsPerGene.out.tab"
    assert sniff(path.read_bytes()[:16384], Source.file(path)) == 0.0


def test_read_gse_dir(realdata, tmp_path):
    for rel in ("htseq/yeast_RNASeq_excerpt_withNH_counts_twocolumns.tsv", MULTI_KEYS[1]):
        shutil.copy(realdata / rel, tmp_path)
    adata = gseio.read_gse_dir(tmp_path)
    assert adata.n_obs == 3
    assert adata.n_vars == 7124
    assert set(adata.uns["gseio"]["formats"]) == {"htseq"}
    # every sample of the same BAM excerpt has the same total
    np.testing.assert_array_equal(np.asarray(adata.X.sum(axis=1)).ravel(), [22171.0] * 3)


MULTI_KEYS = sorted(MULTI)


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "bad.tsv"
    path.write_text("GENE1\t\tchrI\t5\t7\nGENE2\t\tchrI\t1\t0\n" + body + "__no_feature\t\t\t3\t4\n")
    return path


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("GENE3\t\tchrI\t-1\t2\n", InvalidValueError),
        ("GENE3\t\tchrI\tNaN\t2\n", InvalidValueError),
        ("GENE3\t\tchrI\tlots\t2\n", InvalidValueError),
        ("GENE3\t\tchrI\t2\n", FormatError),
    ],
)
def test_bad_values_name_the_file(tmp_path, body, error):
    path = _write(tmp_path, body)
    with pytest.raises(error, match=re.escape("bad.tsv")):
        gseio.read(path, format="htseq")


def test_sniffer_never_raises_on_junk():
    for junk in (b"", b"\0\1\2", b"\xff\xfe" * 100, b"a\tb\n\t\t\n", b"__no_feature\t\t\t1\n", b"\n\n\n"):
        assert sniff(junk, Source.file("junk.txt")) in (0.0, 0.6, 1.0)


@pytest.mark.parametrize("compression", ["none", "gzip"])
@pytest.mark.parametrize(
    ("first", "said"),
    [
        ("ENSG00000000001\t5\tNA", "value 'NA' in column 3 is not a number"),
        ("ENSG00000000001\tchrI\t1,000", "value '1,000' in column 3 is not a number"),
        ("ACTB\t0x10\t4", "value '0x10' in column 2 is not a number"),
        ("ACTB\t3\t-", "value '-' in column 3 is not a number"),
    ],
)
def test_a_bad_count_on_line_1_is_a_bad_value_not_a_header(tmp_path, compression, first, said):
    # once taken for a header (its last field is no number): the gene lost, the cells named "5" and "NA"
    # the same fields as line 1, with good counts: GENEk, the attribute (if any), then 2s
    fields = first.split("\t")
    body = "".join(
        "\t".join([f"GENE{k}", *(f if f == "chrI" else "2" for f in fields[1:])]) + "\n" for k in range(4)
    )
    text = (first + "\n" + body).encode()
    folder = tmp_path / "in"
    folder.mkdir()
    path = folder / "s.tsv"
    path.write_bytes(gzip.compress(text) if compression == "gzip" else text)
    assert gseio.detect_format(path) == "htseq"
    gene = first.split("\t")[0]
    with pytest.raises(InvalidValueError, match=re.escape(f"line 1 (gene '{gene}'): {said}")):
        gseio.read_gse_dir(folder)


def test_a_header_line_is_still_a_header(tmp_path):
    path = tmp_path / "s.tsv"
    path.write_text("gene\tchr\tS1\tS2\nGENE1\tchrI\t5\t7\nGENE2\tchrII\t1\t0\n")
    adata = gseio.read(path, format="htseq")
    assert adata.obs_names.tolist() == ["S1", "S2"]
    assert adata.var_names.tolist() == ["GENE1", "GENE2"]
    assert adata.X.toarray().tolist() == [[5, 1], [7, 0]]
