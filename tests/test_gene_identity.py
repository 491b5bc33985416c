"""Gene identity while assembling: Ensembl versions, ID vs symbol series, spike-ins, date-like symbols."""

from __future__ import annotations

import numpy as np
import pytest

import gseio
from gseio._genes import GeneIdentityError


def _cell(folder, name, counts: dict[str, int]):
    folder.mkdir(exist_ok=True)
    (folder / name).write_text("".join(f"{g}\t{v}\n" for g, v in counts.items()))


def test_ensembl_versions_join_and_the_versioned_id_is_kept(tmp_path):
    _cell(tmp_path, "GSM1_a.txt", {"ENSG00000141510.17": 5, "ENSG00000002586.20_PAR_Y": 1, "ERCC-00002": 3})
    _cell(tmp_path, "GSM2_b.txt", {"ENSG00000141510.16": 7, "ENSG00000002586.20": 2})
    adata = gseio.read_gse_dir(tmp_path)
    expected = ["ENSG00000141510", "ENSG00000002586_PAR_Y", "ERCC-00002", "ENSG00000002586"]
    assert adata.var_names.tolist() == expected
    assert adata.X.toarray().tolist() == [[5, 1, 3, 0], [7, 0, 0, 2]]
    versions = adata.var["gene_id_version"].astype(object).where(adata.var["gene_id_version"].notna(), None)
    assert versions.tolist() == ["ENSG00000141510.17", "ENSG00000002586.20_PAR_Y", None, "ENSG00000002586.20"]
    assert adata.var["spike_in"].tolist() == [False, False, True, False]
    report = adata.uns["gseio"]["genes"]
    assert report["n_ensembl_versions_stripped"] == 3
    assert report["n_spike_ins"] == 1
    exact = gseio.read_gse_dir(tmp_path, gene_ids="exact")
    assert exact.n_vars == 5  # ENSG00000141510.17 and .16 stay apart


def test_ids_in_some_files_and_symbols_in_others_is_refused(tmp_path):
    _cell(tmp_path, "GSM1_a.txt", {f"ENSG{i:011d}": i + 1 for i in range(20)})
    _cell(tmp_path, "GSM2_b.txt", {f"GENE{i}": i + 1 for i in range(30)})
    with pytest.raises(GeneIdentityError, match=r"1 gene list\(s\) label genes by Ensembl ID.*20 genes.*30 genes"):
        gseio.read_gse_dir(tmp_path)
    assert gseio.read_gse_dir(tmp_path, gene_ids="exact").n_vars == 50


def test_gene_lists_tell_measured_from_absent(tmp_path):
    _cell(tmp_path, "GSM1_a.txt", {"A": 1, "B": 0})
    _cell(tmp_path, "GSM2_b.txt", {"A": 2, "B": 0})  # same list as GSM1
    _cell(tmp_path, "GSM3_c.txt", {"C": 4, "A": 0})  # B not measured here
    adata = gseio.read_gse_dir(tmp_path)
    assert adata.var_names.tolist() == ["A", "B", "C"]
    assert adata.obs["gene_list"].tolist() == [0, 0, 1]
    present = adata.varm["gene_lists"]
    assert present.tolist() == [[True, True], [True, False], [False, True]]
    # B is a measured zero in GSM1 but absent from GSM3: both are 0 in X, the mask tells them apart
    b = adata.var_names.get_loc("B")
    assert adata.X[0, b] == 0
    assert present[b, adata.obs["gene_list"].iloc[0]]
    assert adata.X[2, b] == 0
    assert not present[b, adata.obs["gene_list"].iloc[2]]


def test_gene_lists_in_a_backed_build_and_sorted_order(tmp_path):
    src = tmp_path / "in"
    _cell(src, "GSM1_a.txt", {"Z": 1, "A": 2})
    _cell(src, "GSM2_b.txt", {"M": 3})
    memory = gseio.read_gse_dir(src, gene_order="sorted")
    backed = gseio.read_gse_dir(src, gene_order="sorted", backed=tmp_path / "x.h5ad")
    assert memory.var_names.tolist() == ["A", "M", "Z"]
    np.testing.assert_array_equal(backed.varm["gene_lists"], memory.varm["gene_lists"])
    assert memory.varm["gene_lists"].tolist() == [[True, False], [False, True], [True, False]]


def test_date_like_symbols_are_reported(tmp_path):
    _cell(tmp_path, "GSM1_a.txt", {"1-Mar": 3, "SEPT2": 1, "2-Sep": 4, "TP53": 2, "Mar-1": 1})
    report = gseio.read_gse_dir(tmp_path).uns["gseio"]["genes"]
    assert report["n_excel_dates"] == 3
    assert sorted(report["excel_dates"]) == ["1-Mar", "2-Sep", "Mar-1"]


def test_single_file_reads_keep_labels_as_written(tmp_path):
    _cell(tmp_path, "GSM1_a.txt", {"ENSG00000141510.17": 5})
    assert gseio.read(tmp_path / "GSM1_a.txt").var_names.tolist() == ["ENSG00000141510.17"]


def _table(rows):
    import pandas as pd

    frame = pd.DataFrame(rows, columns=["gene_id", "gene_symbol", "length"]).set_index("gene_id")
    return frame


def test_a_gene_table_joins_symbol_files_with_id_files_and_repairs_dates(tmp_path):
    table = _table([("ENSG00000141510", "TP53", 2000), ("ENSG00000136997", "MYC", 1500),
                    ("ENSG00000168385", "SEPTIN2", 3000), ("ENSG00000145416", "MARCH1", 900),
                    ("ENSG00000186205", "MARC1", 800)])  # fmt: skip
    _cell(tmp_path, "GSM1_a.txt", {"ENSG00000141510.17": 5, "ENSG00000136997.21": 1})
    _cell(tmp_path, "GSM2_b.txt", {"TP53": 7, "2-Sep": 4, "1-Mar": 2, "NOVEL1": 3})
    with pytest.raises(GeneIdentityError):
        gseio.read_gse_dir(tmp_path)
    adata = gseio.read_gse_dir(tmp_path, gene_table=table)
    assert adata.var_names.tolist() == ["ENSG00000141510", "ENSG00000136997", "ENSG00000168385", "1-Mar", "NOVEL1"]
    assert adata.X.toarray().tolist() == [[5, 1, 0, 0, 0], [7, 0, 4, 2, 3]]
    symbols = adata.var["gene_symbols"].astype(object).where(adata.var["gene_symbols"].notna(), None)
    assert symbols.tolist() == ["TP53", None, "SEPTIN2", "1-Mar", "NOVEL1"]
    report = adata.uns["gseio"]["genes"]
    assert report["n_symbols_mapped_to_ids"] == 2  # TP53, SEPTIN2 (repaired from 2-Sep)
    assert report["n_excel_dates_repaired"] == 1  # 1-Mar is MARCH1 or MARC1: left as it is
    assert report["n_symbols_not_in_gene_table"] == 2
