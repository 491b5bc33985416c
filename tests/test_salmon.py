"""salmon ``quant.sf`` / ``quant.genes.sf`` and output folders (format ``salmon``)."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pandas as pd
import pytest

import gseio
from gseio._source import Source
from gseio.errors import FormatError, InvalidValueError
from gseio.readers.salmon import read_salmon, sniff

WT = "salmon/nf-core_test-datasets/WT_REP1"
DM = "salmon/tximportData/salmon_dm/SRR1197474/quant.sf"
SAMPLES = ["salmon/pytximport/multiple/Sample_1.sf", "salmon/pytximport/multiple/Sample_2.sf"]
YEAST_GTF = "gtf/htseq/Saccharomyces_cerevisiae.SGD1.01.56.gtf.gz"


def _sf(path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", index_col=0)


@pytest.mark.parametrize("rel", [f"{WT}/quant.sf", f"{WT}/quant.genes.sf", DM, *SAMPLES])
def test_detected(realdata, rel):
    assert gseio.detect_format(realdata / rel) == "salmon"


def test_folder_reads_gene_level_only(realdata, tmp_path):
    shutil.copytree(realdata / WT, tmp_path / "WT_REP1")
    ref = _sf(realdata / WT / "quant.genes.sf")
    adata = gseio.read_gse_dir(tmp_path)
    assert adata.shape == (1, len(ref))
    assert list(adata.uns["gseio"]["files"]) == ["WT_REP1/quant.genes.sf"]
    assert list(adata.obs_names) == ["WT_REP1"]
    assert adata.obs["sample"].iloc[0] == "WT_REP1"
    assert list(adata.var_names) == ref.index.tolist()
    np.testing.assert_array_equal(adata.X.toarray()[0], ref["NumReads"].to_numpy())
    np.testing.assert_array_equal(adata.var["effective_length"].to_numpy(), ref["EffectiveLength"].to_numpy())


def test_quant_sf_alone_transcript_level(realdata, tmp_path):
    (tmp_path / "WT_REP1").mkdir()
    shutil.copy(realdata / WT / "quant.sf", tmp_path / "WT_REP1")
    ref = _sf(realdata / WT / "quant.sf")
    adata = read_salmon(tmp_path / "WT_REP1" / "quant.sf")
    assert adata.shape == (1, 125)
    assert list(adata.obs_names) == ["WT_REP1"]
    assert adata.X.sum() == pytest.approx(ref["NumReads"].sum())
    assert "transcript level" in adata.uns["gseio"]["notes"][0]


def test_quant_sf_with_gtf_matches_quant_genes_sf(realdata, tmp_path):
    (tmp_path / "WT_REP1").mkdir()
    shutil.copy(realdata / WT / "quant.sf", tmp_path / "WT_REP1")
    adata = read_salmon(tmp_path / "WT_REP1" / "quant.sf", tx2gene=realdata / YEAST_GTF)
    genes = _sf(realdata / WT / "quant.genes.sf")["NumReads"]
    got = pd.Series(adata.X.toarray()[0], index=adata.var_names)
    # salmon's own gene totals; Gfp_transgene_gene is not in the Ensembl GTF (dropped, and noted)
    assert set(genes.index) - set(got.index) == {"Gfp_transgene_gene"}
    np.testing.assert_allclose(got.to_numpy(), genes[got.index].to_numpy(), rtol=1e-6)
    assert "Gfp_transgene_gene" in adata.uns["gseio"]["notes"][0]


def test_full_quant_sf(realdata):
    ref = _sf(realdata / DM)
    adata = read_salmon(realdata / DM)
    assert adata.shape == (1, 33706)
    assert list(adata.obs_names) == ["SRR1197474"]
    np.testing.assert_array_equal(adata.X.toarray()[0], ref["NumReads"].to_numpy())
    np.testing.assert_array_equal(adata.var["length"].to_numpy(), ref["Length"].to_numpy(dtype=float))


def test_gencode_names_and_read_gse_dir(realdata, tmp_path):
    for rel in SAMPLES:
        shutil.copy(realdata / rel, tmp_path)
    adata = gseio.read_gse_dir(tmp_path)
    assert list(adata.obs_names) == ["Sample_1", "Sample_2"]
    refs = [_sf(realdata / rel) for rel in SAMPLES]
    names = [name.split("|")[0] for name in refs[0].index]
    # a build joins Ensembl IDs without their version; the versioned ones stay in var
    assert list(adata.var_names) == [n.rsplit(".", 1)[0] for n in names]
    assert adata.var["gene_id_version"].tolist() == names
    for row, ref in enumerate(refs):
        np.testing.assert_array_equal(adata.X.toarray()[row], ref["NumReads"].to_numpy())
    assert adata.var["gene_name"].iloc[0] == refs[0].index[0].split("|")[5]


def test_tx2gene_table_with_versions(realdata):
    t2g = pd.read_csv(realdata / "tx2gene/kb_python/transcripts_to_genes.txt", sep="\t", header=None, index_col=0)
    ref = _sf(realdata / SAMPLES[0])
    # the map is of another GENCODE release: ids match only without their version suffix
    t2g.index = t2g.index.str.replace(r"\.\d+$", "", regex=True)
    tx = ref.index.str.split("|").str[0].str.replace(r"\.\d+$", "", regex=True)
    genes = pd.Series(tx).map(t2g[1])
    expected = ref["NumReads"].groupby(genes.to_numpy()).sum()
    adata = read_salmon(realdata / SAMPLES[0], tx2gene=realdata / "tx2gene/kb_python/transcripts_to_genes.txt")
    got = pd.Series(adata.X.toarray()[0], index=adata.var_names)
    got = got[got != 0]
    expected = expected[expected != 0]
    pd.testing.assert_series_equal(
        got.sort_index(), expected.sort_index(), check_names=False, check_index_type=False
    )
    notes = adata.uns["gseio"]["notes"][0]
    assert "not in tx2gene were dropped" in notes
    assert "without version" in notes


HEADER = "Name\tLength\tEffectiveLength\tTPM\tNumReads\n"


@pytest.mark.parametrize(
    ("row", "error"),
    [("T2\t10\t5\t1\t-1\n", InvalidValueError), ("T2\t10\t5\t1\tNaN\n", InvalidValueError),
     ("T2\t10\t5\t1\tabc\n", InvalidValueError), ("T2\t10\t5\t1\n", FormatError)],
)  # fmt: skip
def test_bad_values_name_the_file(tmp_path, row, error):
    path = tmp_path / "bad.sf"
    path.write_text(HEADER + "T1\t10\t5\t1\t2\n" + row)
    with pytest.raises(error, match=re.escape("bad.sf")):
        gseio.read(path)


def test_sniffer_never_raises_on_junk():
    for junk in (b"", b"\0", b"Name\n", b"\xff" * 30):
        assert sniff(junk, Source.file("x")) == 0.0
