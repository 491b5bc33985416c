from __future__ import annotations

import contextlib
import gzip
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gseio
from gseio._registry import get_format
from gseio.errors import GseioError, GseioWarning, UnknownFormatError

NOT_CELL_TABLES = [
    "10x_v3/scanpy/3.0.0/filtered_feature_bc_matrix/matrix.mtx.gz",
    "10x_v3/scanpy/3.0.0/filtered_feature_bc_matrix/features.tsv.gz",
    "10x_v2/scanpy/1.2.0/filtered_gene_bc_matrices/hg19_chr21/barcodes.tsv",
    "10x_v3/scanpy/3.0.0/filtered_feature_bc_matrix.h5",
    "htseq/yeast_RNASeq_excerpt_withbarcodes.tsv",
    "featurecounts/GenomicsAotearoa/yeast_counts_all_chr.txt",
    "geo_series_matrix/SeriesMatrixIO/GSE285754_series_matrix.txt.gz",
    "gtf/pytximport/annotation.gtf",
]


def test_list_formats_and_unknown_name():
    assert "cell_table" in gseio.list_formats()
    with pytest.raises(UnknownFormatError, match=r"known formats: .*cell_table"):
        get_format("nope")


@pytest.mark.parametrize(
    "name",
    ["htseq/bamfile_no_qualities.tsv", "htseq/multiqc/counts.tsv", "htseq/yeast_RNASeq_excerpt_withNH_counts.tsv"],
)
def test_real_cell_tables_are_detected(realdata, name):
    assert gseio.detect_format(realdata / name) == "cell_table"


@pytest.mark.parametrize("name", NOT_CELL_TABLES)
def test_other_real_files_are_not_taken_for_cell_tables(realdata, name):
    try:
        detected, message = gseio.detect_format(realdata / name), ""
    except UnknownFormatError as e:
        detected, message = None, str(e)
    if detected is None:
        assert str(realdata / name) in message
    else:
        assert detected != "cell_table"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=600), compress=st.booleans())
def test_junk_bytes_give_only_typed_errors(tmp_path, data, compress):
    path = tmp_path / "junk.txt"
    path.write_bytes(gzip.compress(data) if compress else data)
    with contextlib.suppress(GseioError):
        gseio.detect_format(path)
    with contextlib.suppress(GseioError):
        gseio.read_cell_table(path)


_lines = st.lists(
    st.tuples(
        st.text(st.characters(blacklist_categories=["Cs"]), max_size=12),
        st.sampled_from(["\t", ",", " ", ";"]),
        st.one_of(st.integers(-5, 10**9).map(str), st.floats(allow_nan=True).map(repr), st.text(max_size=4)),
    ),
    min_size=0,
    max_size=30,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=_lines, newline=st.sampled_from(["\n", "\r\n"]))
def test_table_like_text_reads_exactly_or_fails_typed(tmp_path, lines, newline):
    path = tmp_path / "t.txt"
    path.write_text(newline.join(f"{g}{sep}{v}" for g, sep, v in lines) + newline, encoding="utf-8")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", GseioWarning)
        try:
            adata = gseio.read_cell_table(path)
        except GseioError:
            return
    # the one warning such text may give: names stripped of blanks (issue 10: said so, not silent)
    assert all("stripped of leading or trailing whitespace" in str(w.message) for w in caught), caught
    # whatever was read is finite, positive (zeros not stored) and named by text from the file
    assert np.isfinite(adata.X.data).all()
    assert (adata.X.data > 0).all()
    text = path.read_text(encoding="utf-8")
    assert all(name in text for name in adata.var_names)


@settings(max_examples=400, deadline=None)
@given(data=st.binary(min_size=1, max_size=2000))
def test_every_sniffer_takes_any_bytes_without_raising(data):
    from gseio._registry import all_formats
    from gseio._source import Source

    source = Source(path=Path("junk.bin"), rel="junk.bin")
    for spec in all_formats():
        if spec.sniff is not None:
            score = spec.sniff(data, source)  # called directly: an exception here fails the test
            assert 0.0 <= float(score) <= 1.0


@settings(max_examples=300, deadline=None)
@given(data=st.binary(min_size=64, max_size=2000).filter(lambda b: b.count(0) >= 4))
def test_binary_junk_is_claimed_by_no_format(data):
    from gseio._registry import sniff_scores
    from gseio._source import Source

    assert sniff_scores(Source(path=Path("junk.bin"), rel="junk.bin"), data) == {}


def test_every_public_name_resolves():
    for name in gseio.__all__:
        assert getattr(gseio, name) is not None
    assert set(gseio.__all__) <= set(dir(gseio))
