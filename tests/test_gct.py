from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

import gseio
from gseio.errors import FormatError, InvalidValueError
from gseio.readers.gct import read_gct


def test_real_rnaseqc_gct(realdata):
    path = realdata / "gct" / "rnaseqc" / "downsampled.bam.gene_reads.gct"
    assert gseio.detect_format(path) == "gct"
    frame = pd.read_csv(path, sep="\t", skiprows=2)
    adata = read_gct(path)
    assert adata.shape == (1, 56202) == (1, len(frame))
    assert adata.var_names.tolist() == frame["Name"].tolist()
    assert adata.var["gene_symbols"].astype(str).tolist() == frame["Description"].astype(str).tolist()
    np.testing.assert_array_equal(adata.X.toarray()[0], frame["Counts"].to_numpy())
    assert adata.X.sum() == frame["Counts"].sum()


def test_gct_read_gse_dir_and_errors(realdata, tmp_path):
    shutil.copyfile(realdata / "gct/rnaseqc/downsampled.bam.gene_reads.gct", tmp_path / "s.gct")
    assert list(gseio.read_gse_dir(tmp_path).uns["gseio"]["formats"]) == ["gct"]
    bad = tmp_path / "bad.gct"
    bad.write_text("#1.2\n3\t1\nName\tDescription\tS1\nG1\tA\t1\nG2\tB\t2\n")
    with pytest.raises(FormatError, match="dimension line says 3 rows") as info:
        read_gct(bad)
    assert str(bad) in str(info.value)
    bad.write_text("#1.2\n1\t1\nName\tDescription\tS1\nG1\tA\t-1\n")
    with pytest.raises(InvalidValueError):
        read_gct(bad)
