from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from scipy import sparse

import gseio
from gseio.errors import FormatError
from gseio.readers.tenx_h5 import read_10x_h5
from gseio.readers.tenx_mtx import read_10x_mtx

V3_FILES = [
    "10x_v3/scanpy/3.0.0/filtered_feature_bc_matrix.h5",
    "10x_h5_visium/scanpy/visium_1.0.0/filtered_feature_bc_matrix.h5",
    "10x_h5_visium/scanpy/visium_2.1.0/raw_probe_bc_matrix.h5",
    "10x_h5_xenium/multiqc/sample1/cell_feature_matrix.h5",
]
V2_FILES = ["10x_v2/scanpy/1.2.0/filtered_gene_bc_matrices_h5.h5", "10x_v2/scanpy/1.2.0/multiple_genomes.h5"]


def _text(values: np.ndarray) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def reference(group: h5py.Group) -> tuple[sparse.csr_matrix, list[str]]:
    """Cells x features straight from the HDF5 arrays (CSC over features x cells)."""
    n_features, n_cells = group["shape"][()]
    matrix = sparse.csc_matrix(
        (group["data"][()], group["indices"][()], group["indptr"][()]), shape=(n_features, n_cells)
    )
    return matrix.T.tocsr(), _text(group["barcodes"][()])


@pytest.mark.parametrize("name", V3_FILES + V2_FILES)
def test_real_h5_files_are_detected(realdata, name):
    assert gseio.detect_format(realdata / name) == "tenx_h5"


@pytest.mark.parametrize(
    "name", ["loom/htseq/bamfile_no_qualities.loom", "kallisto/sleuth_small_test_data/kallisto/abundance.h5"]
)
def test_other_hdf5_files_are_not_taken(realdata, name):
    from gseio._source import Source
    from gseio.readers.tenx_h5 import sniff

    path = realdata / name
    assert sniff(path.read_bytes()[:16384], Source.file(path)) == 0


@pytest.mark.parametrize("name", V3_FILES)
def test_v3_reads_like_h5py(realdata, name):
    with h5py.File(realdata / name, "r") as f:
        matrix, barcodes = reference(f["matrix"])
        ids = _text(f["matrix/features/id"][()])
        symbols = _text(f["matrix/features/name"][()])
        types = _text(f["matrix/features/feature_type"][()])
    adata = read_10x_h5(realdata / name)
    assert adata.shape == matrix.shape
    assert adata.obs["cell"].tolist() == barcodes
    assert adata.var_names.tolist() == ids
    assert adata.var["gene_symbols"].astype(str).tolist() == symbols
    assert adata.var["feature_types"].astype(str).tolist() == types
    assert (matrix != adata.X).nnz == 0
    assert adata.X.sum() == matrix.sum()


def test_v2_single_genome(realdata):
    name = V2_FILES[0]
    with h5py.File(realdata / name, "r") as f:
        matrix, barcodes = reference(f["hg19_chr21"])
        genes = _text(f["hg19_chr21/genes"][()])
    adata = read_10x_h5(realdata / name)
    assert adata.obs["cell"].tolist() == barcodes
    assert adata.var_names.tolist() == genes
    assert set(adata.var["genome"]) == {"hg19_chr21"}
    assert (matrix != adata.X).nnz == 0


def test_multiple_genomes(realdata):
    path = realdata / V2_FILES[1]
    with h5py.File(path, "r") as f:
        genomes = sorted(f)
        parts = {g: reference(f[g]) for g in genomes}
        genes = {g: _text(f[g]["genes"][()]) for g in genomes}
    both = read_10x_h5(path)
    assert both.n_obs == len(parts[genomes[0]][1])
    assert both.var_names.tolist() == genes[genomes[0]] + genes[genomes[1]]
    assert both.var["genome"].astype(str).tolist() == [g for g in genomes for _ in genes[g]]
    assert (sparse.hstack([parts[g][0] for g in genomes]).tocsr() != both.X).nnz == 0
    for genome in genomes:
        one = read_10x_h5(path, genome=genome)
        assert one.var_names.tolist() == genes[genome]
        assert (parts[genome][0] != one.X).nnz == 0
    with pytest.raises(FormatError, match=r"no genome 'mm10'.*another_genome, hg19_chr21") as info:
        read_10x_h5(path, genome="mm10")
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("folder", "h5"),
    [
        ("10x_v3/scanpy/3.0.0/filtered_feature_bc_matrix", "10x_v3/scanpy/3.0.0/filtered_feature_bc_matrix.h5"),
        ("10x_v2/scanpy/1.2.0/filtered_gene_bc_matrices/hg19_chr21", V2_FILES[0]),
    ],
)
def test_mtx_and_h5_of_the_same_data_read_identically(realdata, folder, h5):
    mtx, h5ad = read_10x_mtx(realdata / folder), read_10x_h5(realdata / h5)
    assert mtx.obs["cell"].tolist() == h5ad.obs["cell"].tolist()
    assert mtx.var_names.tolist() == h5ad.var_names.tolist()
    assert mtx.var["gene_symbols"].tolist() == h5ad.var["gene_symbols"].tolist()
    assert mtx.X.dtype == h5ad.X.dtype
    assert (mtx.X != h5ad.X).nnz == 0


def test_gene_expression_only_and_folder_read(realdata, tmp_path):
    for name in V3_FILES[:2]:
        shutil.copyfile(realdata / name, tmp_path / f"GSM{len(list(tmp_path.iterdir())) + 1}_{Path(name).name}")
    adata = gseio.read_gse_dir(tmp_path, gene_expression_only=True)
    assert set(adata.var["feature_types"]) == {"Gene Expression"}
    assert adata.obs["sample"].unique().tolist() == ["GSM1", "GSM2"]


def test_damaged_file_raises_typed_error(realdata, tmp_path):
    path = tmp_path / "bad.h5"
    shutil.copyfile(realdata / V3_FILES[0], path)
    with h5py.File(path, "r+") as f:
        indices = f["matrix/indices"][()]
        indices[0] = 10_000
        f["matrix/indices"][...] = indices
    with pytest.raises(FormatError, match="outside its 507 features") as info:
        read_10x_h5(path)
    assert str(path) in str(info.value)


def test_h5_in_a_tar_reads_like_the_file(realdata, tmp_path):
    import tarfile

    path = realdata / V3_FILES[0]
    tar = tmp_path / "GSE1_RAW.tar"
    with tarfile.open(tar, "w") as archive:
        archive.add(path, arcname="GSM1_filtered_feature_bc_matrix.h5")
    from_tar, from_file = gseio.read_gse_dir(tar), read_10x_h5(path)
    assert from_tar.obs["cell"].tolist() == from_file.obs["cell"].tolist()
    assert from_tar.var_names.tolist() == from_file.var_names.tolist()
    assert (from_tar.X != from_file.X).nnz == 0
    assert from_tar.obs["sample"].unique().tolist() == ["GSM1"]
