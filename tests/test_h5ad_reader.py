from __future__ import annotations

import shutil

import anndata as ad
import h5py
import numpy as np
import pytest
from scipy import sparse

import gseio
from gseio.errors import InvalidValueError
from gseio.readers.h5ad import read_h5ad_file


def test_real_htseq_h5ad(realdata, tmp_path):
    path = realdata / "h5ad" / "htseq" / "bamfile_no_qualities.h5ad"
    assert gseio.detect_format(path) == "h5ad"
    with h5py.File(path) as f:
        X = f["X"][()]
        genes = f["var/id"].asstr()[()]
        cells = f["obs/_index"].asstr()[()]
    special = np.char.startswith(genes.astype(str), "__")
    adata = read_h5ad_file(path)
    assert adata.obs_names.tolist() == cells.tolist()
    assert adata.var_names.tolist() == genes[~special].tolist()
    np.testing.assert_array_equal(adata.X.toarray(), X[:, ~special])
    assert adata.obs["htseq_no_feature"].iloc[0] == X[0, genes.tolist().index("__no_feature")]
    shutil.copyfile(path, tmp_path / "x.h5ad")
    assert list(gseio.read_gse_dir(tmp_path).uns["gseio"]["formats"]) == ["h5ad"]


@pytest.mark.parametrize("kind", ["csr", "csc", "dense"])
def test_generated_h5ad_prefers_counts_over_normalised_x(tmp_path, kind):
    counts = sparse.random(20, 30, density=0.3, format="csr", random_state=0)
    counts.data = np.ceil(counts.data * 10)
    normalised = counts.copy()
    normalised.data = np.log1p(normalised.data / 3)
    X = {"csr": normalised, "csc": normalised.tocsc(), "dense": normalised.toarray()}[kind]
    adata = ad.AnnData(X=X, layers={"counts": counts})
    adata.var["gene_symbols"] = [f"S{i}" for i in range(30)]
    adata.var["length"] = np.arange(30, dtype=float)
    path = tmp_path / "n.h5ad"
    adata.write_h5ad(path)
    out = read_h5ad_file(path)
    np.testing.assert_array_equal(out.X.toarray(), counts.toarray())
    assert out.var["length"].tolist() == list(range(30))
    assert "layers/counts" in out.uns["gseio"]["notes"][0]


def test_negative_values_refused(tmp_path):
    path = tmp_path / "neg.h5ad"
    ad.AnnData(X=np.array([[1.0, -2.0]])).write_h5ad(path)
    with pytest.raises(InvalidValueError) as info:
        read_h5ad_file(path)
    assert str(path) in str(info.value)
