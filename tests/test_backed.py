"""Out-of-core builds (backed=...) equal in-memory builds, and the template streams from them."""

from __future__ import annotations

import gzip
import shutil

import h5py
import numpy as np
import pytest
import scanpy as sc

import gseio
import gseio.export.template as template
from gseio.errors import InvalidValueError, OutputError


def _same(backed, memory) -> None:
    assert backed.isbacked
    X = backed.X[:]
    assert X.dtype == memory.X.dtype
    assert (X != memory.X).nnz == 0
    assert X.has_canonical_format
    assert backed.obs_names.tolist() == memory.obs_names.tolist()
    assert backed.var_names.tolist() == memory.var_names.tolist()
    assert backed.obs.equals(memory.obs)
    assert backed.uns["gseio"]["files"].tolist() == memory.uns["gseio"]["files"].tolist()


@pytest.mark.parametrize("gene_order", ["first_seen", "sorted"])
def test_backed_demo_equals_in_memory(demo_dir, tmp_path, gene_order):
    memory = gseio.read_gse_dir(demo_dir, gene_order=gene_order)
    backed = gseio.read_gse_dir(demo_dir, gene_order=gene_order, backed=tmp_path / "demo.h5ad")
    _same(backed, memory)
    with h5py.File(tmp_path / "demo.h5ad", "r") as f:
        assert f["X/indptr"].dtype == f["X/indices"].dtype == np.int32  # equal, as scipy and sklearn need
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.h5ad"]  # no temporary file left


def test_backed_real_10x_series_with_small_blocks(realdata, tmp_path, monkeypatch):
    import gseio._backed as backed_module

    monkeypatch.setattr(backed_module, "BLOCK_NNZ", 1000)  # many blocks in the re-sorting pass
    folder = realdata / "geo_10x_prefixed" / "GSE224438"
    memory = gseio.read_gse_dir(folder, gene_order="sorted")
    _same(gseio.read_gse_dir(folder, gene_order="sorted", backed=tmp_path / "x.h5ad"), memory)


def test_values_are_widened_when_a_later_unit_needs_float64(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.txt").write_text("G1\t3\nG2\t5\n")
    (src / "b.txt.gz").write_bytes(gzip.compress(b"G1\t0.25\nG3\t7\n"))
    (src / "c.txt").write_text("G2\t16777217\n")
    memory = gseio.read_gse_dir(src)
    backed = gseio.read_gse_dir(src, backed=tmp_path / "w.h5ad", n_jobs=1)
    assert memory.X.dtype == np.float64
    _same(backed, memory)
    assert backed.X[:].toarray().tolist() == [[3, 5, 0], [0.25, 0, 7], [0, 16777217, 0]]


def test_template_streams_from_a_backed_build_identically(demo_dir, tmp_path, monkeypatch):
    memory = gseio.read_gse_dir(demo_dir)
    backed = gseio.read_gse_dir(demo_dir, backed=tmp_path / "demo.h5ad")
    gseio.write_template(memory, tmp_path / "from_memory")
    monkeypatch.setattr(template, "_row_blocks", _small_blocks(template._row_blocks))
    gseio.write_template(backed, tmp_path / "from_backed")
    for name in template.RAW_FILES:
        assert (tmp_path / "from_backed" / name).read_bytes() == (tmp_path / "from_memory" / name).read_bytes()
    assert (gseio.read_template(tmp_path / "from_backed").X != memory.X).nnz == 0


def _small_blocks(original):
    def blocks(adata, *args, block_nnz=1 << 22, **kwargs):
        yield from original(adata, *args, block_nnz=500, **kwargs)

    return blocks


def test_indices_become_64_bit_past_2_to_the_31_non_zeros(tmp_path, monkeypatch):
    import gseio._backed as backed_module

    monkeypatch.setattr(backed_module, "_INT32_MAX", 100)  # the threshold, scaled down
    src = tmp_path / "in"
    src.mkdir()
    for i in range(4):
        (src / f"c{i}.txt").write_text("".join(f"G{j}\t{j + 1 + i}\n" for j in range(40)))
    memory = gseio.read_gse_dir(src)
    _same(gseio.read_gse_dir(src, backed=tmp_path / "big.h5ad", n_jobs=1), memory)
    with h5py.File(tmp_path / "big.h5ad", "r") as f:
        assert f["X/indptr"].dtype == f["X/indices"].dtype == np.int64


def test_backed_h5ad_goes_through_scanpy(demo_dir, tmp_path):
    gseio.read_gse_dir(demo_dir, backed=tmp_path / "demo.h5ad")
    adata = sc.read_h5ad(tmp_path / "demo.h5ad")  # a plain h5ad for any reader
    sc.pp.normalize_total(adata)
    sc.pp.log1p(adata)
    sc.pp.pca(adata, n_comps=10)
    assert adata.obsm["X_pca"].shape == (adata.n_obs, 10)


def test_backed_target_is_never_overwritten_nor_left_half_written(tmp_path, demo_dir):
    (tmp_path / "exists.h5ad").write_text("mine")
    with pytest.raises(OutputError, match="exists already"):
        gseio.read_gse_dir(demo_dir, backed=tmp_path / "exists.h5ad")
    assert (tmp_path / "exists.h5ad").read_text() == "mine"
    bad = tmp_path / "bad"
    shutil.copytree(demo_dir, bad)
    (bad / "GSM9_zz.txt").write_text("G1\t1\nG2\t-1\n")  # sorts last: fails after the others streamed
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(InvalidValueError):
        gseio.read_gse_dir(bad, backed=out / "x.h5ad", n_jobs=1)
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("genes_by_cells", [True, False])
def test_backed_wide_table_read_in_small_blocks_equals_in_memory(tmp_path, monkeypatch, genes_by_cells):
    from gseio.readers import _table_body, _table_piece, wide_table

    monkeypatch.setattr(wide_table, "TABLE_BLOCK_BYTES", 500)  # many blocks of lines, and of transposition
    monkeypatch.setattr(_table_body, "PARSE_BLOCK_BYTES", 200)
    monkeypatch.setattr(_table_piece, "BLOCK_NNZ", 11)
    rng = np.random.default_rng(3)
    values = rng.integers(0, 4, size=(60, 30)) * (rng.random((60, 30)) < 0.4)  # genes x cells
    genes = [f"ENSG{i:011d}" for i in range(60)]
    cells = [f"AAACCTG{j:05d}-1" for j in range(30)]
    table = values if genes_by_cells else values.T
    rows, columns = (genes, cells) if genes_by_cells else (cells, genes)
    src = tmp_path / "in"
    src.mkdir()
    text = "gene\t" + "\t".join(columns) + "\n"
    text += "".join(label + "\t" + "\t".join(map(str, row)) + "\n" for label, row in zip(rows, table, strict=True))
    (src / "GSE1_counts.txt.gz").write_bytes(gzip.compress(text.encode()))
    memory = gseio.read_gse_dir(src)
    _same(gseio.read_gse_dir(src, backed=tmp_path / "w.h5ad"), memory)
    assert memory.X.toarray().tolist() == values.T.tolist()
