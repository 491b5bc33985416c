from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import io as sio
from scipy import sparse

import gseio
from gseio.errors import OutputError, TemplateError
from gseio.export.template import CELL_ANNOTATION_COLUMNS, RAW_FILES


def _platform_read(folder):
    """Exactly how the platform reads the folder."""
    X = sio.mmread(folder / "expressionMatrix_rawCounts.mtx").tocsr()
    cells = pd.read_csv(folder / "cellID_rawCounts.tsv", sep="\t")
    genes = pd.read_csv(folder / "genes_rawCounts.tsv", sep="\t")
    annotation = pd.read_csv(folder / "cellAnnotation.tsv", sep="\t")
    return X, cells, genes, annotation


def _small(values, dtype=np.float32) -> ad.AnnData:
    X = sparse.csr_matrix(np.asarray(values, dtype=dtype))
    adata = ad.AnnData(X=X)
    adata.obs_names = [f"cell{i}" for i in range(X.shape[0])]
    adata.var_names = [f"gene{j}" for j in range(X.shape[1])]
    adata.obs["sample"] = pd.Categorical([f"GSM{i // 2}" for i in range(X.shape[0])])
    return adata


def test_round_trip_and_platform_read_on_demo(demo_dir, tmp_path):
    adata = gseio.read_gse_dir(demo_dir)
    written = gseio.write_template(adata, tmp_path)
    assert sorted(p.name for p in written) == sorted(RAW_FILES)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(RAW_FILES)  # no temporary files left
    back = gseio.read_template(tmp_path)
    assert back.X.dtype == adata.X.dtype
    assert (back.X != adata.X).nnz == 0
    assert back.obs_names.tolist() == adata.obs_names.tolist()
    assert back.var_names.tolist() == adata.var_names.tolist()
    assert back.obs["sample"].tolist() == adata.obs["sample"].tolist()

    X, cells, genes, annotation = _platform_read(tmp_path)
    assert X.shape == (adata.n_obs, adata.n_vars)  # cells x genes
    assert (X != adata.X).nnz == 0
    assert cells.columns.tolist() == ["cellID"]
    assert cells["cellID"].tolist() == adata.obs_names.tolist()
    assert genes.columns.tolist() == ["genes"]
    assert genes["genes"].tolist() == adata.var_names.tolist()
    assert annotation.columns.tolist() == list(CELL_ANNOTATION_COLUMNS)
    assert annotation["cellID"].tolist() == adata.obs_names.tolist()
    assert annotation["sampleID"].tolist() == adata.obs["sample"].tolist()
    other = annotation.drop(columns=["cellID", "sampleID"])
    assert (other == "notAvailable").all().all()


def test_mtx_header_integer_field_and_no_explicit_zeros(tmp_path):
    adata = _small([[1, 0, 3], [0, 0, 0], [7, 2, 0]])
    adata.X.data[0] = 0  # an explicit zero must not be written
    gseio.write_template(adata, tmp_path)
    lines = (tmp_path / "expressionMatrix_rawCounts.mtx").read_text().splitlines()
    assert lines[0] == "%%MatrixMarket matrix coordinate integer general"
    body = [line for line in lines[1:] if not line.startswith("%")]
    assert body[0].split() == ["3", "3", "3"]  # n_cells n_genes nnz
    entries = {tuple(map(int, line.split())) for line in body[1:]}
    assert entries == {(1, 3, 3), (3, 1, 7), (3, 2, 2)}  # 1-based (row, col, value)


def test_real_values_at_full_precision(tmp_path):
    values = [[0.1, 0, 1 / 3], [123456.789012345, 2.5e-12, 0]]
    adata = _small(values, dtype=np.float64)
    gseio.write_template(adata, tmp_path)
    assert (
        (tmp_path / "expressionMatrix_rawCounts.mtx")
        .read_text()
        .startswith("%%MatrixMarket matrix coordinate real general")
    )
    X, *_ = _platform_read(tmp_path)
    np.testing.assert_array_equal(X.toarray(), np.asarray(values))
    back = gseio.read_template(tmp_path)
    assert back.X.dtype == np.float64
    np.testing.assert_array_equal(back.X.toarray(), np.asarray(values))


def test_refuses_to_overwrite_unless_asked(tmp_path):
    adata = _small([[1, 2]])
    gseio.write_template(adata, tmp_path)
    with pytest.raises(OutputError, match="exist already"):
        gseio.write_template(adata, tmp_path)
    adata.X = sparse.csr_matrix(np.array([[5, 6]], dtype=np.float32))
    gseio.write_template(adata, tmp_path, overwrite=True)
    assert gseio.read_template(tmp_path).X.toarray().tolist() == [[5, 6]]


def test_a_crash_while_writing_leaves_no_file(tmp_path, monkeypatch):
    import gseio.export.template as template

    def broken(*args, **kwargs):
        raise KeyboardInterrupt  # e.g. Ctrl-C in the middle of the matrix

    monkeypatch.setattr(template, "_write_column", broken)
    with pytest.raises(KeyboardInterrupt):
        gseio.write_template(_small([[1, 2]]), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_names_that_would_break_the_tsv_are_refused(tmp_path):
    adata = _small([[1, 2]])
    adata.var_names = ["ok", "bad\tname"]
    with pytest.raises(OutputError, match="tab, newline or double quote"):
        gseio.write_template(adata, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_non_finite_values_are_refused(tmp_path):
    with pytest.raises(OutputError, match="NaN or infinite"):
        gseio.write_template(_small([[1, np.nan]], dtype=np.float64), tmp_path)


def test_read_template_checks_consistency(tmp_path):
    gseio.write_template(_small([[1, 2], [3, 4]]), tmp_path)
    (tmp_path / "cellID_rawCounts.tsv").write_text("cellID\ncell0\n")
    with pytest.raises(TemplateError, match="2 x 2 but there are 1 cell ids"):
        gseio.read_template(tmp_path)
    (tmp_path / "genes_rawCounts.tsv").write_text("gene\ngene0\ngene1\n")
    with pytest.raises(TemplateError, match="header 'genes'"):
        gseio.read_template(tmp_path)
    (tmp_path / "expressionMatrix_rawCounts.mtx").unlink()
    with pytest.raises(TemplateError, match=r"expressionMatrix_rawCounts\.mtx is missing"):
        gseio.read_template(tmp_path)


def test_without_sample_column_sample_id_is_not_available(tmp_path):
    adata = _small([[1, 2]])
    del adata.obs["sample"]
    gseio.write_template(adata, tmp_path)
    *_, annotation = _platform_read(tmp_path)
    assert annotation["sampleID"].tolist() == ["notAvailable"]
