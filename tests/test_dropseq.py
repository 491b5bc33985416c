from __future__ import annotations

import gzip
import shutil

import numpy as np
import pandas as pd
import pytest

import gseio
from gseio.errors import InvalidValueError
from gseio.readers.dropseq import read_dropseq

FILES = [
    ("MergeSplitDge.1.digital_expression.txt.gz", (5, 2904)),
    ("P60ENTSTNRep1P1.subset.auto.digital_expression.txt", (99, 96)),
    ("test_with_header.dge.txt.gz", (10, 10)),
]


@pytest.mark.parametrize(("name", "shape"), FILES)
def test_real_dge(realdata, name, shape):
    path = realdata / "dropseq_dge" / name
    assert gseio.detect_format(path) == "dropseq"
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rt") as fh:  # the preamble: every line before the GENE header
        start = next(i for i, line in enumerate(fh) if line.startswith("GENE\t"))
    frame = pd.read_csv(path, sep="\t", skiprows=start, index_col=0)
    adata = read_dropseq(path)
    assert adata.shape == shape == frame.T.shape
    assert adata.obs_names.tolist() == frame.columns.tolist()
    assert adata.var_names.tolist() == frame.index.tolist()
    np.testing.assert_array_equal(adata.X.toarray(), frame.to_numpy().T)
    assert "DGE" in adata.uns["gseio"]["notes"][0]


def test_read_gse_dir_and_bad_value(realdata, tmp_path):
    shutil.copyfile(realdata / "dropseq_dge/test_with_header.dge.txt.gz", tmp_path / "GSM1_dge.txt.gz")
    adata = gseio.read_gse_dir(tmp_path)
    assert adata.shape == (10, 10)
    assert list(adata.uns["gseio"]["formats"]) == ["dropseq"]
    bad = tmp_path / "bad.dge.txt"
    bad.write_text("#DGE\tVERSION:1.1\tEXPRESSION_FORMAT:raw\nGENE\tAAACCCGGGTTT\nACTB\t-3\n")
    with pytest.raises(InvalidValueError, match="negative") as info:
        read_dropseq(bad)
    assert str(bad) in str(info.value)
