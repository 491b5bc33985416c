"""The TPM part of the template: expressionMatrix_TPM.mtx and geneAnnotation.tsv, per the contract."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import io as sio
from scipy import sparse

import gseio
from gseio.errors import OutputError
from gseio.export.template import GENE_ANNOTATION, TPM_MATRIX


@pytest.fixture
def demo_tpm(demo_dir):
    adata = gseio.read_gse_dir(demo_dir)
    rng = np.random.default_rng(0)
    lengths = pd.Series(rng.integers(300, 20_000, adata.n_vars).astype(float), index=adata.var_names)
    gseio.pp.tpm(adata, protocol="Smart-seq2", lengths=lengths)
    return adata, lengths


def test_tpm_files_follow_the_contract(demo_tpm, tmp_path):
    adata, lengths = demo_tpm
    written = gseio.write_template(adata, tmp_path, tpm=True)
    assert {p.name for p in written} >= {TPM_MATRIX, GENE_ANNOTATION}
    header = (tmp_path / TPM_MATRIX).read_text().splitlines()[0]
    assert header == "%%MatrixMarket matrix coordinate real general"
    tpm = sio.mmread(tmp_path / TPM_MATRIX).tocsr()  # as the platform reads it
    genes = pd.read_csv(tmp_path / "genes_rawCounts.tsv", sep="\t")["genes"]
    kept = genes[~genes.str.startswith("ERCC-")].tolist()
    assert tpm.shape == (adata.n_obs, len(kept))
    annotation = pd.read_csv(tmp_path / GENE_ANNOTATION, sep="\t")
    assert annotation.columns.tolist() == ["geneSymbol", "ensemblID", "ensemblIDVersion", "geneID"]
    assert annotation["geneID"].tolist() == kept
    assert (annotation["ensemblID"] == annotation["geneID"]).all()  # the demo's genes are Ensembl IDs
    assert (annotation["geneSymbol"] == "notAvailable").all()
    # independent recomputation: counts / length, spike-ins dropped, rows scaled to 1e6
    raw = sio.mmread(tmp_path / "expressionMatrix_rawCounts.mtx").tocsr().toarray()
    keep = ~genes.str.startswith("ERCC-").to_numpy()
    rate = raw[:, keep] / lengths.to_numpy()[keep]
    expected = rate / rate.sum(axis=1, keepdims=True) * 1e6
    np.testing.assert_allclose(tpm.toarray(), expected, rtol=1e-12)
    back = gseio.read_template(tmp_path)
    np.testing.assert_array_equal(back.layers["tpm"].toarray(), adata.layers["tpm"].toarray())
    assert back.var["ensemblID"].tolist()[:3] == kept[:3]


def test_tpm_needs_a_tpm_layer(demo_dir, tmp_path):
    adata = gseio.read_gse_dir(demo_dir)
    with pytest.raises(OutputError, match=r"gseio\.pp\.tpm"):
        gseio.write_template(adata, tmp_path, tpm=True)
    assert list(tmp_path.iterdir()) == []


def test_gene_annotation_from_var_and_a_gene_table(tmp_path):
    names = ["ENSG00000141510", "MYC", "ENSG00000002586_PAR_Y", "NOVEL1", "ERCC-00002"]
    X = sparse.csr_matrix(np.array([[5.0, 3, 1, 2, 9], [1, 0, 4, 0, 1]]))
    adata = ad.AnnData(X=X, var=pd.DataFrame(index=names))
    adata.var["gene_id_version"] = ["ENSG00000141510.17", None, "ENSG00000002586.20_PAR_Y", None, None]
    adata.layers["tpm"] = X.copy()
    table = pd.DataFrame(
        {"gene_symbol": ["TP53", "MYC", "CD99"], "gene_id_version": ["ENSG00000141510.17", "ENSG00000136997.21",
                                                                     "ENSG00000002586.20"]},
        index=pd.Index(["ENSG00000141510", "ENSG00000136997", "ENSG00000002586"], name="gene_id"),
    )  # fmt: skip
    gseio.write_template(adata, tmp_path, tpm=True, gene_table=table)
    annotation = pd.read_csv(tmp_path / GENE_ANNOTATION, sep="\t", keep_default_na=False)
    assert annotation.to_dict("list") == {
        "geneSymbol": ["TP53", "MYC", "notAvailable", "NOVEL1"],
        "ensemblID": ["ENSG00000141510", "ENSG00000136997", "ENSG00000002586_PAR_Y", "notAvailable"],
        "ensemblIDVersion": ["ENSG00000141510.17", "ENSG00000136997.21", "ENSG00000002586.20_PAR_Y",
                             "notAvailable"],
        "geneID": ["ENSG00000141510", "MYC", "ENSG00000002586_PAR_Y", "NOVEL1"],
    }  # fmt: skip
