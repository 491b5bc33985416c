from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest

import gseio
from gseio.errors import InvalidValueError
from gseio.readers.loom import read_loom


@pytest.mark.parametrize("name", ["bamfile_no_qualities.loom", "yeast_RNASeq_excerpt_withbarcodes.loom"])
def test_real_loom(realdata, name):
    path = realdata / "loom" / "htseq" / name
    assert gseio.detect_format(path) == "loom"
    with h5py.File(path) as f:
        matrix = f["matrix"][()]
        genes = f["row_attrs/id"].asstr()[()]
        cells = f["col_attrs/_index"].asstr()[()]
    special = np.char.startswith(genes.astype(str), "__")
    adata = read_loom(path)
    assert adata.obs_names.tolist() == cells.tolist()
    assert adata.var_names.tolist() == genes[~special].tolist()
    np.testing.assert_array_equal(adata.X.toarray(), matrix[~special].T)
    for gene, row in zip(genes[special], matrix[special], strict=True):
        np.testing.assert_array_equal(adata.obs[f"htseq_{gene[2:]}"].to_numpy(), row)


def test_loom_matches_the_tsv(realdata, tmp_path):
    from gseio.readers.wide_table import read_wide_table

    loom = read_loom(realdata / "loom/htseq/yeast_RNASeq_excerpt_withbarcodes.loom")
    tsv = read_wide_table(realdata / "htseq/yeast_RNASeq_excerpt_withbarcodes.tsv")
    np.testing.assert_array_equal(loom.X.toarray(), tsv.X.toarray())
    shutil.copyfile(realdata / "loom/htseq/bamfile_no_qualities.loom", tmp_path / "a.loom")
    assert list(gseio.read_gse_dir(tmp_path).uns["gseio"]["formats"]) == ["loom"]


def test_generated_loom_and_bad_values(tmp_path):
    path = tmp_path / "g.loom"
    with h5py.File(path, "w") as f:
        f["matrix"] = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]])
        f["row_attrs/Gene"] = np.array([b"A", b"B", b"C"])
        f["row_attrs/Accession"] = np.array([b"E1", b"E2", b"E3"])
        f["col_attrs/CellID"] = np.array([b"c1", b"c2"])
    adata = read_loom(path)
    assert adata.var_names.tolist() == ["A", "B", "C"]
    assert adata.var["gene_ids"].astype(str).tolist() == ["E1", "E2", "E3"]
    assert adata.X.toarray().tolist() == [[1, 0, 3], [0, 2, 4]]
    with h5py.File(path, "a") as f:
        f["matrix"][0, 0] = np.nan
    with pytest.raises(InvalidValueError) as info:
        read_loom(path)
    assert str(path) in str(info.value)
