"""STAR ``ReadsPerGene.out.tab`` (format ``star``)."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pandas as pd
import pytest

import gseio
from gseio._source import Source
from gseio.errors import FormatError, InvalidValueError
from gseio.readers.star import choose_column, read_star, sniff

STAR = "star/ERR458837_subsamp_1ReadsPerGene.out.tab"
COUNTERS = ["N_unmapped", "N_multimapping", "N_noFeature", "N_ambiguous"]


@pytest.fixture(scope="module")
def reference(realdata) -> pd.DataFrame:
    return pd.read_csv(realdata / STAR, sep="\t", header=None, index_col=0)


def test_detected(realdata):
    assert gseio.detect_format(realdata / STAR) == "star"


@pytest.mark.parametrize(
    ("strandedness", "column"), [("unstranded", 1), ("forward", 2), ("reverse", 3), ("auto", 2)]
)
def test_columns(realdata, reference, strandedness, column):
    adata = read_star(realdata / STAR, strandedness=strandedness)
    genes = reference.drop(index=COUNTERS)
    assert adata.shape == (1, 57773)
    assert list(adata.obs_names) == ["ERR458837_subsamp_1"]
    assert list(adata.var_names) == genes.index.tolist()
    np.testing.assert_array_equal(adata.X.toarray()[0], genes[column].to_numpy(dtype=float))
    for name in COUNTERS:
        assert adata.obs[f"star_{name}"].iloc[0] == reference.loc[name, column]


def test_auto_records_choice_and_totals(realdata, reference):
    adata = read_star(realdata / STAR)
    genes = reference.drop(index=COUNTERS)
    note = adata.uns["gseio"]["notes"][0]
    assert "forward (column 3)" in note
    assert f"{genes[2].sum():g}" in note
    assert f"{genes[3].sum():g}" in note


@pytest.mark.parametrize(
    ("forward", "reverse", "choice"),
    [(100, 10, "forward"), (80, 20, "forward"), (79, 21, "unstranded"), (50, 50, "unstranded"), (5, 95, "reverse"),
     (0, 0, "unstranded")],
)  # fmt: skip
def test_auto_rule(forward, reverse, choice):
    assert choose_column(forward, reverse)[0] == choice


def test_read_gse_dir(realdata, tmp_path):
    shutil.copy(realdata / STAR, tmp_path)
    # a second sample: the same counts with a trailing blank line (identical bytes would be a duplicate)
    other = (realdata / STAR).read_bytes() + b"\n"
    (tmp_path / "GSM1_other_ReadsPerGene.out.tab").write_bytes(other)
    adata = gseio.read_gse_dir(tmp_path, strandedness="reverse")
    assert adata.shape == (2, 57773)
    assert sorted(adata.obs["cell"]) == ["ERR458837_subsamp_1", "other"]
    assert set(adata.uns["gseio"]["formats"]) == {"star"}


def test_bad_strandedness(realdata):
    with pytest.raises(ValueError, match="strandedness"):
        read_star(realdata / STAR, strandedness="sideways")


HEAD = "N_unmapped\t1\t1\t1\nN_multimapping\t2\t2\t2\nN_noFeature\t3\t4\t5\nN_ambiguous\t0\t0\t0\nG1\t5\t5\t0\n"


@pytest.mark.parametrize(
    ("row", "error"),
    [("G2\t-1\t0\t0\n", InvalidValueError), ("G2\tNaN\t0\t0\n", InvalidValueError),
     ("G2\tx\t0\t0\n", InvalidValueError), ("G2\t1\t0\n", FormatError)],
)  # fmt: skip
def test_bad_values_name_the_file(tmp_path, row, error):
    path = tmp_path / "badReadsPerGene.out.tab"
    path.write_text(HEAD + row)
    with pytest.raises(error, match=re.escape("badReadsPerGene")):
        gseio.read(path)


def test_sniffer_never_raises_on_junk():
    for junk in (b"", b"\0", b"N_unmapped\n", b"N_unmapped\t1\n" * 4, b"\xff" * 30):
        assert sniff(junk, Source.file("x")) == 0.0
