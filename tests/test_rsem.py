"""RSEM ``genes.results`` / ``isoforms.results`` (format ``rsem``)."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pandas as pd
import pytest

import gseio
from gseio._source import Source
from gseio.errors import FormatError, InvalidValueError
from gseio.readers.rsem import read_rsem, sniff

GENES = "rsem/tximportData/ERR188021/ERR188021.genes.results.gz"
ISOFORMS_HEADER = "transcript_id\tgene_id\tlength\teffective_length\texpected_count\tTPM\tFPKM\tIsoPct\n"


@pytest.fixture(scope="module")
def reference(realdata) -> pd.DataFrame:
    return pd.read_csv(realdata / GENES, sep="\t", index_col=0)


def test_detected(realdata):
    assert gseio.detect_format(realdata / GENES) == "rsem"


def test_read(realdata, reference):
    adata = read_rsem(realdata / GENES)
    assert adata.shape == (1, 58288)
    assert list(adata.obs_names) == ["ERR188021"]
    assert list(adata.var_names) == reference.index.tolist()
    np.testing.assert_allclose(adata.X.toarray()[0], reference["expected_count"].to_numpy(), rtol=0, atol=0)
    assert adata.X.sum() == pytest.approx(reference["expected_count"].sum())
    np.testing.assert_array_equal(adata.var["length"].to_numpy(), reference["length"].to_numpy())
    np.testing.assert_array_equal(
        adata.var["effective_length"].to_numpy(), reference["effective_length"].to_numpy()
    )
    assert "TPM" not in adata.var
    assert "FPKM" not in adata.var


def test_genes_and_isoforms_of_a_sample_are_one_unit(realdata, reference, tmp_path):
    shutil.copy(realdata / GENES, tmp_path)
    # a small isoforms file of the same sample: it must not be read next to genes.results
    rows = "".join(f"TX{i}\t{gene}\t100\t50\t5\t1\t1\t100\n" for i, gene in enumerate(reference.index[:3]))
    (tmp_path / "ERR188021.isoforms.results").write_text(ISOFORMS_HEADER + rows)
    adata = gseio.read_gse_dir(tmp_path)
    assert adata.shape == (1, 58288)
    assert list(adata.uns["gseio"]["files"]) == ["ERR188021.genes.results.gz"]
    assert adata.obs["sample"].iloc[0] == "ERR188021"
    assert "isoforms.results not read" in adata.uns["gseio"]["notes"][0]


def test_isoforms_alone_at_transcript_level(tmp_path):
    path = tmp_path / "GSM9_S1.isoforms.results"
    path.write_text(ISOFORMS_HEADER + "TX1\tG1\t100\t50.5\t2.5\t1\t1\t100\nTX2\tG1\t90\t40\t0\t0\t0\t0\n")
    assert gseio.detect_format(path) == "rsem"
    adata = read_rsem(path)
    assert list(adata.obs_names) == ["S1"]
    assert adata.var["gene_id"].tolist() == ["G1", "G1"]
    assert adata.X.toarray().tolist() == [[2.5, 0.0]]
    assert "transcript level" in adata.uns["gseio"]["notes"][0]


HEADER = "gene_id\ttranscript_id(s)\tlength\teffective_length\texpected_count\tTPM\tFPKM\n"


@pytest.mark.parametrize(
    ("row", "error"),
    [("G2\tT2\t10\t5\t-1\t0\t0\n", InvalidValueError), ("G2\tT2\t10\t5\tNA\t0\t0\n", InvalidValueError),
     ("G2\tT2\t10\t5\tinf\t0\t0\n", InvalidValueError), ("G2\tT2\t10\t5\n", FormatError)],
)  # fmt: skip
def test_bad_values_name_the_file(tmp_path, row, error):
    path = tmp_path / "bad.genes.results"
    path.write_text(HEADER + "G1\tT1\t10\t5\t3.5\t1\t1\n" + row)
    with pytest.raises(error, match=re.escape("bad.genes.results")):
        gseio.read(path)


def test_sniffer_never_raises_on_junk():
    for junk in (b"", b"\0", b"gene_id\n", b"\xff" * 30):
        assert sniff(junk, Source.file("x")) == 0.0
