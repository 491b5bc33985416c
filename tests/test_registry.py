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
from gseio import _open
from gseio._registry import SNIFF_BYTES, SNIFF_LIMIT, SNIFF_LINES, get_format, read_head, sniff_scores
from gseio._source import Source
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
    # junk is seldom UTF-8: names read as Windows-1252 are warned about, which is no failure here
    with contextlib.suppress(GseioError), warnings.catch_warnings():
        warnings.simplefilter("ignore", GseioWarning)
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


# ---- the sniffing window: whole lines, however long


def _wide_gz(path: Path, n_cells: int, n_genes: int) -> tuple[list[str], np.ndarray]:
    cells = [f"CELL_{j:06d}" for j in range(n_cells)]
    counts = np.random.default_rng(n_cells).poisson(0.5, (n_genes, n_cells))
    lines = ["gene\t" + "\t".join(cells)]
    lines += [f"ENSG{g:011d}\t" + "\t".join(map(str, row)) for g, row in enumerate(counts)]
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), compresslevel=1))
    return cells, counts


@pytest.mark.parametrize("n_cells", [1_500, 20_000])
def test_wide_tables_whose_header_passes_16_kib_are_detected_and_read(tmp_path, n_cells):
    folder = tmp_path / "in"
    folder.mkdir()
    path = folder / "GSE1_counts.txt.gz"
    cells, counts = _wide_gz(path, n_cells, 6)
    assert len(gzip.decompress(path.read_bytes()).split(b"\n", 1)[0]) > SNIFF_BYTES
    assert gseio.detect_format(path) == "wide_table"
    adata = gseio.read_gse_dir(folder)
    assert adata.obs["cell"].tolist() == cells
    assert adata.var_names.tolist() == [f"ENSG{g:011d}" for g in range(6)]
    assert np.array_equal(adata.X.toarray(), counts.T)


def test_a_200000_column_table_is_sniffed_from_its_first_lines_only(tmp_path):
    path = tmp_path / "wide.txt.gz"
    _wide_gz(path, 200_000, 40)
    data = gzip.decompress(path.read_bytes())
    head, cut = read_head(Source.file(path))
    assert head == b"".join(data.splitlines(keepends=True)[:SNIFF_LINES])  # the header and five rows of forty
    assert not cut
    assert gseio.detect_format(path) == "wide_table"


@pytest.mark.parametrize("line", [1, 3])
def test_a_100000_character_gene_name_is_read_as_it_is(tmp_path, line):
    long_name = "G" * 99_990 + "_long_name"
    genes = ["ENSG00000000001", "ENSG00000000002", "ENSG00000000003"]
    genes[line - 1] = long_name
    path = tmp_path / "c.txt"
    path.write_text("".join(f"{g}\t{k + 1}\n" for k, g in enumerate(genes)))
    assert gseio.detect_format(path) == "cell_table"
    adata = gseio.read_cell_table(path)
    assert adata.var_names.tolist() == genes
    assert adata.X.toarray().tolist() == [[1, 2, 3]]


def test_a_line_longer_than_the_limit_gets_its_own_message(tmp_path):
    one_line = tmp_path / "one_line.txt"
    one_line.write_bytes(b"x" * (SNIFF_LIMIT + 10))
    with pytest.raises(UnknownFormatError, match=r"line 1 does not end within the first 16 MiB.*format="):
        gseio.detect_format(one_line)
    second = tmp_path / "second_line.txt"
    second.write_bytes(b"gene\tc1\tc2\nACTB" + b"\t1" * (SNIFF_LIMIT // 2) + b"\n")
    with pytest.raises(UnknownFormatError, match=r"line 2 does not end within the first 16 MiB"):
        gseio.detect_format(second)


def _text_heads(realdata: Path) -> list[Path]:
    files = []
    for path in sorted(realdata.rglob("*")):
        if path.is_file() and path.name != "SOURCES.md":
            head = _open.read_bytes(path, limit=4 * SNIFF_BYTES)
            if len(head) > 2 * SNIFF_BYTES and b"\0" not in head:
                files.append(path)
    return files


def test_sniffers_agree_on_a_head_that_ends_at_a_line_end(realdata):
    files = _text_heads(realdata)
    assert len(files) >= 10
    for path in files:
        source = Source.file(path)
        data = _open.read_bytes(path, limit=4 * SNIFF_BYTES)
        at_line_end = data[: data.rfind(b"\n", 0, SNIFF_BYTES) + 1]
        head, _ = read_head(source)
        assert head.startswith(at_line_end), path  # longer only past comment lines (a series matrix's "!")
        assert head.endswith(b"\n"), path
        scores = sniff_scores(source, at_line_end)
        assert scores == sniff_scores(source, data[:SNIFF_BYTES]) == sniff_scores(source, head), path


@pytest.mark.parametrize(
    ("make_line", "expected"),
    [
        (lambda k: f"ENSG{k:011d}\t{k % 7}", "cell_table"),
        (lambda k: f"ENSG{k:011d}\t{k % 7}\t{k % 3}" if k else "gene\tc1\tc2", "wide_table"),
        (lambda k: f"ENSG{k:011d}\tchrI\t{k % 7}", "htseq"),
        (
            lambda k: (
                f"{['N_unmapped', 'N_multimapping', 'N_noFeature', 'N_ambiguous'][k]}\t1\t1\t1"
                if k < 4
                else f"G{k}\t1\t2\t3"
            ),
            "star",
        ),
    ],
)
def test_a_16_kib_head_that_ends_exactly_at_a_line_end(tmp_path, make_line, expected):
    lines, size = [], 0
    while size < SNIFF_BYTES:
        lines.append(make_line(len(lines)) + "\n")
        size += len(lines[-1])
    lines[-1] = lines[-1][: len(lines[-1]) - (size - SNIFF_BYTES) - 1] + "\n"  # the 16,384th byte is a line end
    text = "".join(lines).encode()
    assert len(text) == SNIFF_BYTES
    assert text.endswith(b"\n")
    path = tmp_path / "t.txt"
    path.write_bytes(text + text.split(b"\n", 1)[1])  # more lines after the window
    source = Source.file(path)
    assert sniff_scores(source, text)[expected] == sniff_scores(source, path.read_bytes())[expected]
    assert gseio.detect_format(path) == expected


def test_comment_lines_do_not_count_as_the_lines_sniffers_need(tmp_path):
    # forty comment lines fill more than the first 16 KiB lines could hold: the header is still seen whole
    comments = "".join(f"# processing note {k}: " + "x" * 40 + "\n" for k in range(40))
    cells = [f"CELL_{j:05d}" for j in range(3_000)]
    rows = "".join(f"ENSG{g:011d}\t" + "\t".join(str((g + j) % 3) for j in range(3_000)) + "\n" for g in range(8))
    path = tmp_path / "t.txt"
    path.write_text(comments + "gene\t" + "\t".join(cells) + "\n" + rows)
    head, cut = read_head(Source.file(path))
    assert head.count(b"\n") == 40 + SNIFF_LINES
    assert not cut
    assert gseio.detect_format(path) == "wide_table"
