"""kallisto ``abundance.h5`` / ``abundance.tsv`` and output folders (format ``kallisto``), and tx2gene maps."""

from __future__ import annotations

import json
import re
import shutil
import warnings

import h5py
import numpy as np
import pandas as pd
import pytest

import gseio
from gseio._source import Source
from gseio.errors import FormatError, GseioWarning, InvalidValueError
from gseio.readers._tx2gene import load_tx2gene
from gseio.readers.kallisto import read_kallisto, sniff

FOLDER = "kallisto/sleuth_small_test_data/kallisto"
PYTX = "kallisto/pytximport/multiple/abundance_1.tsv"
FILES = [f"{FOLDER}/abundance.tsv", f"{FOLDER}/abundance.h5", PYTX]


@pytest.mark.parametrize("rel", FILES)
def test_detected(realdata, rel):
    assert gseio.detect_format(realdata / rel) == "kallisto"


def test_h5_read(realdata):
    with h5py.File(realdata / FOLDER / "abundance.h5") as f:
        ids = [i.decode() for i in f["aux/ids"][:]]
        counts = f["est_counts"][:]
        eff = f["aux/eff_lengths"][:]
    adata = gseio.read(realdata / FOLDER / "abundance.h5", format="kallisto")
    assert adata.shape == (1, 15)
    assert list(adata.var_names) == ids
    assert list(adata.obs_names) == ["kallisto"]  # the output folder's name
    np.testing.assert_array_equal(adata.X.toarray()[0], counts)
    np.testing.assert_array_equal(adata.var["effective_length"].to_numpy(), eff)
    assert "transcript level" in adata.uns["gseio"]["notes"][0]


def test_folder_is_one_unit_checked_against_run_info(realdata, tmp_path):
    shutil.copytree(realdata / FOLDER, tmp_path / "SRR1")
    adata = gseio.read_gse_dir(tmp_path)
    assert adata.n_obs == 1  # abundance.h5 and abundance.tsv are the same sample
    assert list(adata.uns["gseio"]["files"]) == ["SRR1/abundance.h5"]
    assert adata.obs["sample"].iloc[0] == "SRR1"
    info = json.loads((realdata / FOLDER / "run_info.json").read_text())
    tsv = pd.read_csv(realdata / FOLDER / "abundance.tsv", sep="\t")
    # kallisto 0.42 has no n_pseudoaligned; this run pseudoaligned every processed read
    assert adata.X.sum() == pytest.approx(info["n_processed"], rel=1e-9)
    assert adata.X.sum() == pytest.approx(tsv["est_counts"].sum(), rel=1e-5)
    assert "n_processed=10000" in adata.uns["gseio"]["notes"][0]


def test_tsv_alone(realdata, tmp_path):
    shutil.copy(realdata / PYTX, tmp_path)
    ref = pd.read_csv(realdata / PYTX, sep="\t")
    adata = gseio.read_gse_dir(tmp_path)
    assert adata.shape == (1, 14)
    # a build joins Ensembl IDs without their version; the versioned ones stay in var
    assert list(adata.var_names) == [t.rsplit(".", 1)[0] for t in ref["target_id"]]
    assert adata.var["gene_id_version"].tolist() == ref["target_id"].tolist()
    np.testing.assert_array_equal(adata.X.toarray()[0], ref["est_counts"].to_numpy())
    np.testing.assert_array_equal(adata.var["length"].to_numpy(), ref["length"].to_numpy(dtype=float))


def test_run_info_mismatch_warns(realdata, tmp_path):
    shutil.copy(realdata / FOLDER / "abundance.tsv", tmp_path)
    (tmp_path / "run_info.json").write_text(json.dumps({"n_processed": 20000, "n_pseudoaligned": 5000}))
    with pytest.warns(GseioWarning, match="n_pseudoaligned"):
        read_kallisto(tmp_path / "abundance.tsv")


def test_a_run_info_linking_out_of_the_folder_is_never_read(realdata, tmp_path):
    (tmp_path / "sample").mkdir()
    shutil.copy(realdata / FOLDER / "abundance.tsv", tmp_path / "sample")
    (tmp_path / "outside.json").write_text(json.dumps({"n_processed": 20000, "n_pseudoaligned": 5000}))
    (tmp_path / "sample" / "run_info.json").symlink_to(tmp_path / "outside.json")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # read, it would warn as in test_run_info_mismatch_warns
        adata = read_kallisto(tmp_path / "sample" / "abundance.tsv")
    assert "5000" not in adata.uns["gseio"]["notes"][0]


def test_tx2gene_summarises(realdata):
    mapping = pd.read_csv(realdata / "tx2gene/sleuth/target_mapping.txt", sep="\t")
    tsv = pd.read_csv(realdata / FOLDER / "abundance.tsv", sep="\t")
    with h5py.File(realdata / FOLDER / "abundance.h5") as f:
        counts = pd.Series(f["est_counts"][:], index=[i.decode() for i in f["aux/ids"][:]])
    expected = counts.groupby(
        tsv.set_index("target_id").index.map(mapping.set_index("target_id")["gene_name"])
    ).sum()
    adata = read_kallisto(realdata / FOLDER, tx2gene=realdata / "tx2gene/sleuth/target_mapping.txt")
    got = pd.Series(adata.X.toarray()[0], index=adata.var_names)
    pd.testing.assert_series_equal(got.sort_index(), expected.sort_index(), check_names=False)
    assert "length" not in adata.var
    assert "tx2gene" in adata.uns["gseio"]["notes"][0]


def test_tx2gene_of_another_annotation(realdata):
    # pytximport's kallisto sample holds GENCODE transcripts absent from its GTF subset
    with pytest.raises(FormatError, match=r"abundance_1\.tsv.*none of the 14"):
        read_kallisto(realdata / PYTX, tx2gene=realdata / "gtf/pytximport/annotation.gtf")


def _gtf_pairs(path) -> int:
    import gzip

    raw = path.read_bytes()
    text = (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode()
    return len(set(re.findall(r'transcript_id "([^"]+)"', text)))


@pytest.mark.parametrize(
    ("rel", "n"),
    [("tx2gene/kb_python/transcripts_to_genes.txt", None), ("tx2gene/pytximport/transcript_to_gene_map.csv", 20),
     ("tx2gene/pytximport/transcript_to_gene_map_gene_name.csv", 20), ("tx2gene/sleuth/target_mapping.txt", 15),
     ("gtf/pytximport/annotation.gtf", "gtf"), ("gtf/htseq/HomoSapiens.GRCh38-2020-A_subsampled.gtf", "gtf"),
     ("gtf/htseq/Saccharomyces_cerevisiae.SGD1.01.56.gtf.gz", "gtf")],
)  # fmt: skip
def test_load_tx2gene(realdata, rel, n):
    path = realdata / rel
    mapping = load_tx2gene(path)
    if n is None:
        n = pd.read_csv(path, sep="\t", header=None)[0].nunique()
    elif n == "gtf":
        n = _gtf_pairs(path)
    assert len(mapping) == n
    assert not mapping.index.str.contains("transcript|target", case=False).any()  # header row skipped


def test_bad_values_name_the_file(tmp_path):
    header = "target_id\tlength\teff_length\test_counts\ttpm\n"
    for row, error in (("T2\t10\t5\t-2\t1\n", InvalidValueError), ("T2\t10\t5\tnan\t1\n", InvalidValueError),
                       ("T2\t10\t5\tx\t1\n", InvalidValueError), ("T2\t10\t5\n", FormatError)):  # fmt: skip
        path = tmp_path / "bad_abundance.tsv"
        path.write_text(header + "T1\t10\t5\t3\t1\n" + row)
        with pytest.raises(error, match=re.escape("bad_abundance.tsv")):
            gseio.read(path, format="kallisto")


def test_bad_h5_value(realdata, tmp_path):
    path = tmp_path / "abundance.h5"
    shutil.copy(realdata / FOLDER / "abundance.h5", path)
    with h5py.File(path, "r+") as f:
        f["est_counts"][3] = np.nan
    with pytest.raises(InvalidValueError, match=r"abundance.h5.*entry 4"):
        gseio.read(path)


def test_sniffer_never_raises_on_junk(tmp_path):
    junk_h5 = tmp_path / "junk.h5"
    junk_h5.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert sniff(junk_h5.read_bytes(), Source.file(junk_h5)) == 0.0
    for junk in (b"", b"\0", b"target_id\n", b"\xff" * 30):
        assert sniff(junk, Source.file("x")) == 0.0
