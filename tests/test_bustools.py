from __future__ import annotations

import shutil

import pandas as pd
import pytest
import scipy.io

import gseio
from conftest import distinct_copy
from gseio.assemble import plan_input
from gseio.errors import FormatError
from gseio.readers.bustools import read_bustools

FOLDER = "bustools/kb_python/lamanno/counts"


def test_real_output_is_grouped_as_bustools(realdata):
    plan = plan_input(realdata / FOLDER)
    assert [u.format for u in plan.units] == ["bustools"]
    assert sorted(s.name for s in plan.units[0].sources.values()) == sorted(
        p.name for p in (realdata / FOLDER).iterdir()
    )
    assert not plan.failures


def test_reads_like_an_independent_parser(realdata):
    folder = realdata / FOLDER
    matrix = scipy.io.mmread(folder / "spliced.mtx").tocsr()  # cells x genes as written
    barcodes = pd.read_csv(folder / "spliced.barcodes.txt", header=None)[0].tolist()
    genes = pd.read_csv(folder / "spliced.genes.txt", header=None)[0].tolist()
    adata = read_bustools(folder / "spliced.mtx")
    assert adata.shape == matrix.shape == (len(barcodes), len(genes))
    assert adata.obs["cell"].tolist() == barcodes
    assert adata.var_names.tolist() == genes
    assert (matrix != adata.X).nnz == 0
    assert adata.X.sum() == matrix.sum()
    assert adata.uns["gseio"]["notes"][0].startswith('{"orientation": "cells x genes')
    assert adata.obs["sample"].unique().tolist() == ["spliced"]


def test_read_gse_dir_with_geo_names_and_missing_genes(realdata, tmp_path):
    for name in ("spliced.mtx", "spliced.barcodes.txt", "spliced.genes.txt"):
        shutil.copyfile(realdata / FOLDER / name, tmp_path / f"GSM42_{name}")
    adata = gseio.read_gse_dir(tmp_path)
    assert adata.obs["sample"].unique().tolist() == ["GSM42"]
    (tmp_path / "GSM42_spliced.genes.txt").unlink()
    with pytest.raises(FormatError, match=r"no genes file .*GSM42_spliced\.genes\.txt") as info:
        gseio.read_gse_dir(tmp_path)
    assert str(tmp_path / "GSM42_spliced.mtx") in str(info.value)


def test_generic_names_in_sample_folders(realdata, tmp_path):
    for tag, sample in enumerate(("GSM1_liver", "GSM2_lung")):
        for name in ("spliced.mtx", "spliced.barcodes.txt", "spliced.genes.txt"):
            target = tmp_path / sample / "counts_unfiltered" / name.replace("spliced", "cells_x_genes")
            distinct_copy(realdata / FOLDER / name, target, tag)
    adata = gseio.read_gse_dir(tmp_path)
    assert adata.obs["sample"].unique().tolist() == ["GSM1", "GSM2"]
    assert adata.obs_names.is_unique
    assert adata.obs["cell"].iloc[-1].endswith("_1")  # the second sample's (relabelled) cells
