from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

import gseio
from gseio.errors import FormatError, InvalidValueError
from gseio.readers.umi_tools import read_umi_tools

LONG = ["UMI-tools/count_single_cells_gene_tag.tsv", "UMI-tools/count_tab_cell.tsv", "anndata/umi_tools.tsv.gz"]


@pytest.mark.parametrize("name", LONG)
def test_real_long_tables(realdata, name):
    path = realdata / "umi_tools" / name
    assert gseio.detect_format(path) == "umi_tools"
    frame = pd.read_csv(path, sep="\t")
    expected = frame.pivot_table(index="cell", columns="gene", values="count", aggfunc="sum", fill_value=0)
    adata = read_umi_tools(path)
    assert adata.obs_names.tolist() == list(pd.unique(frame["cell"]))  # first-seen order
    assert adata.var_names.tolist() == list(pd.unique(frame["gene"]))
    dense = expected.loc[adata.obs_names, adata.var_names].to_numpy()
    np.testing.assert_array_equal(adata.X.toarray(), dense)
    assert adata.X.sum() == frame["count"].sum()
    assert adata.X.nnz == len(frame)


def test_wide_layout_is_left_to_wide_table_but_read_the_same(realdata):
    wide = realdata / "umi_tools" / "UMI-tools" / "count_single_cells_gene_tag_wide.tsv"
    long = realdata / "umi_tools" / "UMI-tools" / "count_single_cells_gene_tag.tsv"
    assert gseio.detect_format(wide) == "wide_table"  # nothing tells it from a generic wide table
    a, b = read_umi_tools(wide), read_umi_tools(long)
    b = b[a.obs_names, a.var_names]
    np.testing.assert_array_equal(a.X.toarray(), b.X.toarray())


def test_read_gse_dir(realdata, tmp_path):
    shutil.copyfile(realdata / "umi_tools/anndata/umi_tools.tsv.gz", tmp_path / "GSM1_umi.tsv.gz")
    adata = gseio.read_gse_dir(tmp_path)
    assert adata.shape == (2, 13)
    assert list(adata.uns["gseio"]["formats"]) == ["umi_tools"]


@pytest.mark.parametrize(
    ("content", "error", "message"),
    [
        ("gene\tcell\tcount\nA\tc1\t-1\n", InvalidValueError, "negative"),
        ("gene\tcell\tcount\nA\tc1\tNaN\n", InvalidValueError, "missing"),
        (
            "gene\tcell\tcount\nA\tc1\tx\n",
            InvalidValueError,
            r"line 2 \(gene 'A', cell 'c1'\): count 'x' is not a number",
        ),
        ("gene\tcell\tcount\nA\tc1\t1\t4\n", FormatError, "columns"),
        ("foo\tbar\tcount\nA\tc1\t1\n", FormatError, "not UMI-tools"),
    ],
)
def test_bad_files(tmp_path, content, error, message):
    path = tmp_path / "bad.tsv"
    path.write_text(content)
    with pytest.raises(error, match=message) as info:
        read_umi_tools(path)
    assert str(path) in str(info.value)


def test_repeated_pairs(tmp_path):
    path = tmp_path / "d.tsv"
    path.write_text("gene\tcell\tcount\nA\tc1\t1\nA\tc1\t2\n")
    assert read_umi_tools(path).X.toarray().tolist() == [[3]]
    assert read_umi_tools(path, duplicate_genes="first").X.toarray().tolist() == [[1]]
    with pytest.raises(FormatError, match="repeated"):
        read_umi_tools(path, duplicate_genes="error")
