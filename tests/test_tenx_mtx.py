from __future__ import annotations

import gzip
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.io
from scipy import sparse

import gseio
from conftest import distinct_copy
from gseio.assemble import plan_input
from gseio.errors import FormatError, GseioWarning, InvalidValueError
from gseio.readers.tenx_mtx import read_10x_mtx

FOLDERS = [
    "10x_v3/scanpy/3.0.0/filtered_feature_bc_matrix",
    "10x_v2/scanpy/1.2.0/filtered_gene_bc_matrices/hg19_chr21",
    "10x_v3/seurat/cr3.0",
    "10x_v2/seurat",
]
GEO = "geo_10x_prefixed/GSE224438"
GEO_PREFIXES = ["GSM7022367_1_", "GSM7022368_2-1_"]


def _one(folder: Path, pattern: str) -> Path:
    (found,) = sorted(folder.glob(pattern))
    return found


def reference(folder: Path, prefix: str = "") -> tuple[sparse.csr_matrix, list[str], pd.DataFrame]:
    """Independent read: scipy.io.mmread and pandas; returns cells x features, barcodes, features."""
    matrix = scipy.io.mmread(_one(folder, f"{prefix}matrix.mtx*")).T.tocsr()
    barcodes = pd.read_csv(_one(folder, f"{prefix}barcodes.tsv*"), sep="\t", header=None)[0].tolist()
    features = pd.read_csv(_one(folder, f"{prefix}[fg]e*s.tsv*"), sep="\t", header=None)
    return matrix, barcodes, features


@pytest.mark.parametrize("name", [*FOLDERS, GEO])
def test_real_triplets_are_grouped_as_tenx_mtx(realdata, name):
    plan = plan_input(realdata / name)
    assert [u.format for u in plan.units] == ["tenx_mtx"] * len(plan.units)
    assert len(plan.units) == (2 if name == GEO else 1)
    assert not plan.failures
    claimed = {s.rel for u in plan.units for s in u.sources.values()}
    assert claimed == {p.name for p in (realdata / name).iterdir()}


@pytest.mark.parametrize("name", FOLDERS[:3])
def test_reads_like_an_independent_parser(realdata, name):
    matrix, barcodes, features = reference(realdata / name)
    adata = read_10x_mtx(realdata / name)
    assert adata.shape == matrix.shape
    assert adata.obs["cell"].tolist() == barcodes
    assert adata.var_names.tolist() == features[0].tolist()
    assert adata.var["gene_symbols"].astype(str).tolist() == features[1].tolist()
    if features.shape[1] > 2:
        assert adata.var["feature_types"].astype(str).tolist() == features[2].tolist()
    assert (matrix != adata.X).nnz == 0
    assert adata.X.sum() == matrix.sum()
    assert not np.any(adata.X.data == 0)


@pytest.mark.parametrize("prefix", GEO_PREFIXES)
def test_geo_prefixed_space_padded_matrix(realdata, prefix):
    matrix, barcodes, features = reference(realdata / GEO, prefix)
    adata = read_10x_mtx(_one(realdata / GEO, f"{prefix}matrix.mtx.gz"))
    assert adata.shape == matrix.shape == (1000, 1000)
    assert adata.obs["cell"].tolist() == barcodes
    assert adata.var_names.tolist() == features[0].tolist()
    assert (matrix != adata.X).nnz == 0
    assert adata.obs["sample"].unique().tolist() == [prefix.split("_")[0]]
    # square: the 10x layout (genes x cells) is assumed, and the provenance says so
    assert "square" in adata.uns["gseio"]["notes"][0]


def test_flat_geo_folder_makes_barcodes_unique_per_sample(realdata):
    adata = gseio.read_gse_dir(realdata / GEO)
    expected_cells, expected_total = [], 0.0
    for prefix in GEO_PREFIXES:
        matrix, barcodes, _ = reference(realdata / GEO, prefix)
        expected_cells += [(prefix.split("_")[0], b) for b in barcodes]
        expected_total += matrix.sum()
    assert list(zip(adata.obs["sample"].astype(str), adata.obs["cell"], strict=True)) == expected_cells
    assert adata.obs_names.is_unique
    # the two samples share barcodes, so every name carries its sample
    assert adata.obs_names.tolist() == [f"{s}_{b}" for s, b in expected_cells]
    assert adata.X.sum() == pytest.approx(expected_total)
    features = pd.concat(reference(realdata / GEO, p)[2][0] for p in GEO_PREFIXES)
    assert set(adata.var_names) == set(features)


def test_seurat_placeholder_ids_give_way_to_symbols(realdata):
    matrix, barcodes, features = reference(realdata / "10x_v2/seurat")
    assert set(features[0]) == {"ENSGXXXXXX"}  # every id is the same placeholder
    symbols = features[1].tolist()
    unique = list(dict.fromkeys(symbols))
    assert len(unique) < len(symbols)  # some symbols repeat too: they follow duplicate_genes
    with pytest.warns(GseioWarning, match="same placeholder"):
        summed = read_10x_mtx(realdata / "10x_v2/seurat")
    assert summed.var_names.tolist() == unique
    assert summed.obs["cell"].tolist() == barcodes
    dense = matrix.toarray()  # cells x genes
    for symbol in ("CD3D", unique[0]):
        columns = [i for i, s in enumerate(symbols) if s == symbol]
        np.testing.assert_array_equal(summed[:, symbol].X.toarray().ravel(), dense[:, columns].sum(axis=1))
    assert summed.uns["gseio"]["n_duplicate_gene_rows"] == len(symbols) - len(unique)
    assert "same placeholder" in summed.uns["gseio"]["notes"][0]
    with pytest.warns(GseioWarning), pytest.raises(FormatError, match=r"genes\.tsv: .*repeat a feature name"):
        read_10x_mtx(realdata / "10x_v2/seurat", duplicate_genes="error")


def test_gene_expression_only(realdata):
    folder = realdata / "10x_v3/seurat/cr3.0"
    matrix, _, features = reference(folder)
    keep = np.flatnonzero(features[2] == "Gene Expression")
    assert 0 < keep.size < len(features)
    adata = read_10x_mtx(folder, gene_expression_only=True)
    assert adata.var_names.tolist() == features[0][keep].tolist()
    assert (matrix[:, keep] != adata.X).nnz == 0
    assert set(adata.var["feature_types"]) == {"Gene Expression"}
    full = read_10x_mtx(folder)
    assert full.n_vars == len(features)
    assert set(full.var["feature_types"]) == {"Gene Expression", "Antibody Capture"}


def _copy(src: Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    return dst


def test_series_level_shared_features_file(realdata, tmp_path):
    geo = realdata / GEO
    for tag, gsm in enumerate(("GSM1", "GSM2")):
        distinct_copy(geo / "GSM7022367_1_matrix.mtx.gz", tmp_path / f"{gsm}_matrix.mtx.gz", tag)
        distinct_copy(geo / "GSM7022367_1_barcodes.tsv.gz", tmp_path / f"{gsm}_barcodes.tsv.gz", tag)
    _copy(geo / "GSM7022367_1_features.tsv.gz", tmp_path / "GSE123_features.tsv.gz")
    plan = plan_input(tmp_path)
    assert [u.sources["features"].name for u in plan.units] == ["GSE123_features.tsv.gz"] * 2
    adata = gseio.read_gse_dir(tmp_path)
    matrix, barcodes, features = reference(geo, "GSM7022367_1_")
    assert adata.shape == (2 * matrix.shape[0], matrix.shape[1])
    assert adata.var_names.tolist() == features[0].tolist()
    assert adata.obs["sample"].astype(str).tolist() == ["GSM1"] * len(barcodes) + ["GSM2"] * len(barcodes)
    assert (adata.X[: len(barcodes)] != matrix).nnz == 0
    assert (adata.X[len(barcodes) :] != matrix).nnz == 0


def test_cells_by_genes_matrix(realdata, tmp_path):
    source = realdata / FOLDERS[0]
    matrix, _, _ = reference(source)
    for name in ("barcodes.tsv.gz", "features.tsv.gz"):
        _copy(source / name, tmp_path / name)
    scipy.io.mmwrite(tmp_path / "matrix.mtx", matrix.tocoo(), field="integer")  # cells x genes
    adata = read_10x_mtx(tmp_path)
    assert adata.shape == matrix.shape
    assert (matrix != adata.X).nnz == 0
    assert adata.uns["gseio"]["notes"][0].startswith('{"orientation": "cells x genes')


def test_unsorted_entries_and_explicit_zeros(tmp_path):
    (tmp_path / "barcodes.tsv").write_text("c1\nc2\nc3\n")
    (tmp_path / "genes.tsv").write_text("g1\tA\ng2\tB\n")
    (tmp_path / "matrix.mtx").write_text(
        "%%MatrixMarket matrix coordinate real general\n2 3 5\n2 3 1.5\n1 1 2\n1 3 0\n2 1 4\n1 2 7\n"
    )
    adata = read_10x_mtx(tmp_path)
    # genes x cells (2 x 3), entries out of cell order, one explicit zero (not stored)
    np.testing.assert_array_equal(adata.X.toarray(), [[2, 4], [7, 0], [0, 1.5]])
    assert adata.X.nnz == 4


def test_tar_reads_like_the_folder(realdata, tmp_path):
    tar = tmp_path / "GSE224438_RAW.tar"
    with tarfile.open(tar, "w") as archive:
        for path in sorted((realdata / GEO).iterdir()):
            archive.add(path, arcname=path.name)
    from_tar, from_folder = gseio.read_gse_dir(tar), gseio.read_gse_dir(realdata / GEO)
    assert from_tar.obs_names.tolist() == from_folder.obs_names.tolist()
    assert from_tar.var_names.tolist() == from_folder.var_names.tolist()
    assert (from_tar.X != from_folder.X).nnz == 0
    assert from_tar.obs["sample"].tolist() == from_folder.obs["sample"].tolist()


def _triplet(folder: Path, body: str, barcodes: int = 2, genes: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "barcodes.tsv.gz").write_bytes(gzip.compress("".join(f"c{i}\n" for i in range(barcodes)).encode()))
    (folder / "features.tsv.gz").write_bytes(
        gzip.compress("".join(f"g{i}\tG{i}\tGene Expression\n" for i in range(genes)).encode())
    )
    matrix = folder / "matrix.mtx.gz"
    matrix.write_bytes(gzip.compress(("%%MatrixMarket matrix coordinate integer general\n" + body).encode()))
    return matrix


@pytest.mark.parametrize(
    ("body", "barcodes", "error", "match"),
    [
        ("3 2 2\n1 1 5\n4 2 1\n", 2, FormatError, "outside the shape"),
        ("3 2 2\n0 1 5\n3 2 1\n", 2, FormatError, "outside the shape"),
        ("3 2 3\n1 1 5\n3 2 1\n", 2, FormatError, "fewer entries"),
        ("3 2 1\n1 1 5\n3 2 1\n", 2, FormatError, "more entries"),
        ("3 2 2\n1 1 5\n3 2 1\n", 5, FormatError, "5 barcodes .* neither way fits"),
        ("3 2 2\n1 1 -5\n3 2 1\n", 2, InvalidValueError, "entry 1 .*negative"),
        ("3 2 2\n1 1 x\n3 2 1\n", 2, InvalidValueError, "not a number"),
    ],
)
def test_bad_matrices_raise_typed_errors_naming_the_file(tmp_path, body, barcodes, error, match):
    matrix = _triplet(tmp_path / "s", body, barcodes=barcodes)
    with pytest.raises(error, match=match) as info:
        gseio.read_gse_dir(tmp_path)
    assert str(matrix) in str(info.value)


def test_missing_barcodes_file_is_named(tmp_path):
    matrix = _triplet(tmp_path / "s", "3 2 1\n1 1 5\n")
    (tmp_path / "s" / "barcodes.tsv.gz").unlink()
    with pytest.raises(FormatError, match=r"no barcodes file found .*barcodes\.tsv\.gz") as info:
        gseio.read_gse_dir(tmp_path)
    assert str(matrix) in str(info.value)


def test_forced_orientation_must_fit(tmp_path):
    _triplet(tmp_path, "3 2 1\n1 1 5\n")
    with pytest.raises(FormatError, match="cannot be read as cells x genes"):
        gseio.read(tmp_path, orientation="cells_by_genes")
    assert gseio.read(tmp_path, orientation="genes_by_cells").shape == (2, 3)


def test_large_matrix_reads_exactly(tmp_path):
    # over a MiB of indices: the index arrays come from their own memory maps
    rng = np.random.default_rng(0)
    matrix = sparse.random(3000, 400, density=0.3, format="csc", random_state=rng, dtype=np.float64)
    matrix.data = np.ceil(matrix.data * 50)
    assert matrix.nnz * 4 > 1 << 20
    scipy.io.mmwrite(tmp_path / "matrix.mtx", matrix.tocoo(), field="integer")  # genes x cells, by cell
    (tmp_path / "barcodes.tsv").write_text("".join(f"cell{i}\n" for i in range(400)))
    (tmp_path / "features.tsv").write_text("".join(f"g{i}\tG{i}\tGene Expression\n" for i in range(3000)))
    adata = read_10x_mtx(tmp_path)
    assert adata.shape == (400, 3000)
    assert (matrix.T.tocsr() != adata.X).nnz == 0


def test_sample_from_an_enclosing_gsm_folder(realdata, tmp_path):
    for tag, gsm in enumerate(("GSM1_A", "GSM2_B")):
        for path in (realdata / FOLDERS[0]).iterdir():
            distinct_copy(path, tmp_path / gsm / "filtered_feature_bc_matrix" / path.name, tag)
    adata = gseio.read_gse_dir(tmp_path)
    assert adata.obs["sample"].unique().tolist() == ["GSM1", "GSM2"]
    assert adata.obs["source_file"].unique().tolist() == [
        f"{gsm}/filtered_feature_bc_matrix/matrix.mtx.gz" for gsm in ("GSM1_A", "GSM2_B")
    ]


def test_truncated_gzip_matrix_is_corrupt(realdata, tmp_path):
    from gseio.errors import CorruptFileError

    source = realdata / FOLDERS[0]
    for name in ("barcodes.tsv.gz", "features.tsv.gz"):
        _copy(source / name, tmp_path / name)
    matrix = tmp_path / "matrix.mtx.gz"
    matrix.write_bytes((source / "matrix.mtx.gz").read_bytes()[:30000])
    with pytest.raises(CorruptFileError) as info:
        gseio.read_gse_dir(tmp_path)
    assert str(matrix) in str(info.value)
