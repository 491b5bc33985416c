"""Real clients: scanpy clusters what we write; scipy/pandas read the template as the platform does."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scanpy as sc
from click.testing import CliRunner
from scipy import io as sio

from gseio.cli import main


def test_scanpy_clusters_the_demo_h5ad(demo_dir, tmp_path):
    out = tmp_path / "out"
    assert CliRunner().invoke(main, ["build", str(demo_dir), "-o", str(out), "-q"]).exit_code == 0
    adata = sc.read_h5ad(out / "GSE_demo_RAW.h5ad")
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    sc.pp.highly_variable_genes(adata, n_top_genes=500)
    sc.pp.pca(adata, n_comps=20)
    sc.pp.neighbors(adata, n_neighbors=10)
    sc.tl.leiden(adata, resolution=0.5, random_state=0, flavor="igraph", n_iterations=2, directed=False)
    n_clusters = adata.obs["leiden"].nunique()
    assert 2 <= n_clusters < adata.n_obs / 5
    # the demo has three cell types (cell i is type i % 3): clusters must recover them
    truth = np.arange(adata.n_obs) % 3
    table = pd.crosstab(adata.obs["leiden"].to_numpy(), truth)
    purity = table.max(axis=1).sum() / adata.n_obs
    assert purity > 0.9

    X = sio.mmread(out / "expressionMatrix_rawCounts.mtx").tocsr()
    raw = sc.read_h5ad(out / "GSE_demo_RAW.h5ad")
    assert (X != raw.X).nnz == 0
