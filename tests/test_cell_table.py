from __future__ import annotations

import bz2
import gzip
import lzma
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest

import gseio
from conftest import parse_two_column
from gseio.errors import CorruptFileError, EmptyFileError, FormatError, GseioWarning, InvalidValueError
from gseio.readers._header import is_header

GENES = ["ENSG00000000003", "ENSG00000000005", "TSPAN6", "ERCC-00002", "MT-CO1", "Gene(with)parens"]
COUNTS = [12, 0, 3, 0, 4051, 7]


def _text(*, sep: str = "\t", header: str | None = None, floats: bool = False, newline: str = "\n") -> str:
    lines = [] if header is None else [header]
    for gene, count in zip(GENES, COUNTS, strict=True):
        lines.append(f"{gene}{sep}{float(count) if floats else count}")
    return newline.join(lines) + newline


def _write(path: Path, text: str | bytes, compression: str = "none") -> Path:
    raw = text.encode() if isinstance(text, str) else text
    if compression == "gzip":
        raw = gzip.compress(raw)
    elif compression == "bz2":
        raw = bz2.compress(raw)
    elif compression == "xz":
        raw = lzma.compress(raw)
    elif compression == "zip":
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr(path.stem, raw)
        return path
    path.write_bytes(raw)
    return path


def _as_dict(adata) -> dict[str, float]:
    row = adata.X.toarray()[0]
    return dict(zip(adata.var_names, row.tolist(), strict=True))


EXPECTED = dict(zip(GENES, map(float, COUNTS), strict=True))


@pytest.mark.parametrize("compression", ["none", "gzip", "bz2", "xz", "zip"])
@pytest.mark.parametrize("sep", ["\t", ",", " ", "   "])
def test_separators_and_compressions(tmp_path, compression, sep):
    path = _write(tmp_path / "GSM1_cellA.txt.gz", _text(sep=sep), compression)
    adata = gseio.read_cell_table(path)
    assert _as_dict(adata) == EXPECTED
    assert adata.obs["cell"].iloc[0] == "cellA"
    assert adata.obs["sample"].iloc[0] == "GSM1"


def test_suffix_does_not_decide_compression(tmp_path):
    plain_named_gz = _write(tmp_path / "x.txt.gz", _text())  # not gzip at all
    gzip_named_txt = _write(tmp_path / "y.txt", _text(), "gzip")
    assert _as_dict(gseio.read_cell_table(plain_named_gz)) == EXPECTED
    assert _as_dict(gseio.read_cell_table(gzip_named_txt)) == EXPECTED


def test_header_names_the_cell(tmp_path):
    adata = gseio.read_cell_table(_write(tmp_path / "GSM3021397_f.txt", _text(header="gene\tLM2_G15")))
    assert adata.obs_names.tolist() == ["LM2_G15"]
    assert adata.obs["cell"].tolist() == ["LM2_G15"]
    assert _as_dict(adata) == EXPECTED


def test_generic_header_falls_back_to_file_name(tmp_path):
    adata = gseio.read_cell_table(
        _write(tmp_path / "GSM3021397_LM2_G15.hs.raw_counts.txt", _text(header="feature\tcount"))
    )
    assert adata.obs["cell"].tolist() == ["LM2_G15.hs.raw_counts"]


def test_crlf_bom_comments_and_floats(tmp_path):
    text = "# produced by a pipeline\n" + _text(header="gene\tc1", floats=True, newline="\r\n")
    text = text.replace("TSPAN6", "# a comment in the middle\r\nTSPAN6")
    path = _write(tmp_path / "c.csv", b"\xef\xbb\xbf" + text.encode(), "gzip")
    adata = gseio.read_cell_table(path)
    assert _as_dict(adata) == EXPECTED
    assert adata.obs_names.tolist() == ["c1"]


def test_zeros_are_not_stored_and_float_values_kept(tmp_path):
    text = "a\t0\nb\t0.0\nc\t1.25\nd\t0.000\ne\t3\n"
    adata = gseio.read_cell_table(_write(tmp_path / "f.tsv", text))
    assert adata.X.nnz == 2
    assert adata.X.dtype == np.float64  # 1.25 is not an integer
    assert _as_dict(adata) == {"a": 0, "b": 0, "c": 1.25, "d": 0, "e": 3}


def test_integer_counts_give_exact_float32_and_large_counts_float64(tmp_path):
    small = gseio.read_cell_table(_write(tmp_path / "s.tsv", "a\t5\nb\t16777215\n"))
    assert small.X.dtype == np.float32
    big = gseio.read_cell_table(_write(tmp_path / "b.tsv", "a\t5\nb\t16777217\n"))
    assert big.X.dtype == np.float64
    assert big.X.toarray()[0, 1] == 16777217


@pytest.mark.parametrize(
    "name", ["bamfile_no_qualities.tsv", "yeast_RNASeq_excerpt_withNH_counts.tsv", "multiqc/counts.tsv"]
)
def test_real_htseq_tables(realdata, name):
    path = realdata / "htseq" / name
    reference = parse_two_column(path)
    special = {k: v for k, v in reference.items() if k.startswith("__")}
    genes = {k: v for k, v in reference.items() if not k.startswith("__")}
    assert gseio.detect_format(path) == "cell_table"
    adata = gseio.read_cell_table(path)
    assert adata.var_names.tolist() == list(genes)  # file order, specials removed
    assert _as_dict(adata) == genes
    assert len(special) == 5
    for key, value in special.items():
        assert adata.obs[f"htseq_{key[2:]}"].iloc[0] == value
    assert adata.X.nnz == sum(1 for v in genes.values() if v != 0)


def test_duplicate_gene_policies(tmp_path):
    path = _write(tmp_path / "d.tsv", "a\t1\nb\t2\na\t5\n")
    summed = gseio.read_cell_table(path)
    assert _as_dict(summed) == {"a": 6, "b": 2}
    assert summed.uns["gseio"]["n_duplicate_gene_rows"] == 1
    assert _as_dict(gseio.read_cell_table(path, duplicate_genes="first")) == {"a": 1, "b": 2}
    with pytest.raises(FormatError, match="repeat a gene name"):
        gseio.read_cell_table(path, duplicate_genes="error")


@pytest.mark.parametrize(
    ("content", "error", "message"),
    [
        (b"", EmptyFileError, "empty"),
        (b"# only a comment\n\n", FormatError, "no data lines"),
        (b"gene\tcell\n", FormatError, "no data rows"),
        (b"a\t1\nb\tabc\nc\t2\n", InvalidValueError, r"line 2 \(gene 'b'\): count 'abc' is not a number"),
        (b"a\t1\nb\t-3\n", InvalidValueError, "negative"),
        (b"a\t1\nb\tNaN\n", InvalidValueError, "missing or NaN"),
        (b"a\t1\nb\t\n", InvalidValueError, "missing"),
        (b"a\t1\nb\tinf\n", InvalidValueError, "infinite"),
        (b"a\t1\nb\t2\t3\n", FormatError, "line 2: expected 2 columns, got 3"),
        (b"gene\tc1\tc2\na\t1\t2\n", FormatError, "3 columns"),
        (b"just_one_column\n", FormatError, "single column"),
        (b"\t5\nb\t1\n", FormatError, "empty gene name"),
    ],
)
def test_bad_content_raises_typed_error_naming_file(tmp_path, content, error, message):
    path = _write(tmp_path / "bad.txt", content)
    with pytest.raises(error, match=message) as info:
        gseio.read_cell_table(path)
    assert str(path) in str(info.value)
    assert info.value.path == str(path)


def test_truncated_and_fake_gzip(tmp_path):
    good = gzip.compress(_text().encode() * 200)
    truncated = _write(tmp_path / "t.txt.gz", good[: len(good) // 2])
    with pytest.raises(CorruptFileError, match="truncated") as info:
        gseio.read_cell_table(truncated)
    assert str(truncated) in str(info.value)
    corrupt = _write(tmp_path / "c.txt.gz", good[:20] + b"\x00" * 50 + good[70:])
    with pytest.raises(CorruptFileError):
        gseio.read_cell_table(corrupt)


def test_zip_with_several_members(tmp_path):
    path = tmp_path / "two.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("a.txt", _text())
        zf.writestr("b.txt", _text())
    with pytest.raises(FormatError, match="holds 2 files"):
        gseio.read_cell_table(path)


def test_missing_file(tmp_path):
    with pytest.raises(CorruptFileError, match="does not exist"):
        gseio.read_cell_table(tmp_path / "nope.txt")


def test_latin1_gene_names_are_kept(tmp_path):
    with pytest.warns(GseioWarning, match=r"1 of 2 gene names is not valid UTF-8 \(line 1\)"):
        adata = gseio.read_cell_table(_write(tmp_path / "l.txt", "caf\xe9\t3\nb\t1\n".encode("latin-1")))
    assert adata.var_names.tolist() == ["café", "b"]


def test_an_unbalanced_quote_never_merges_rows_silently(tmp_path):
    path = _write(tmp_path / "q.csv", b'",0\r\n",0\r\nB,1\r\n')
    with pytest.raises(FormatError, match="unbalanced quote"):
        gseio.read_cell_table(path)


# line 1 of a header-less file holds a bad count: (token, what the message says of it)
BAD_FIRST_COUNTS = [
    ("NA", "count 'NA' is missing or NaN"),
    ("nan", "count 'nan' is missing or NaN"),
    ("N/A", "count 'N/A' is missing or NaN"),
    ("null", "count 'null' is missing or NaN"),
    ("", "count '' is missing or NaN"),
    ("inf", "count inf is negative, NaN or infinite"),
    ("-inf", "count -inf is negative, NaN or infinite"),
    ("Infinity", "count inf is negative, NaN or infinite"),
    ("0x10", "count '0x10' is not a number"),
    ("1,000", "count '1,000' is not a number"),
    ("abc", "count 'abc' is not a number"),
    ("-", "count '-' is not a number"),
    ("1e", "count '1e' is not a number"),
    ("-3", "count -3 is negative"),
]


@pytest.mark.parametrize("compression", ["none", "gzip"])
@pytest.mark.parametrize(("token", "said"), BAD_FIRST_COUNTS)
def test_a_bad_count_on_line_1_is_a_bad_value_not_a_header(tmp_path, compression, token, said):
    folder = tmp_path / "in"
    folder.mkdir()
    text = f"ENSG00000000001\t{token}\nENSG00000000002\t5\nENSG00000000003\t0\n"
    path = _write(folder / "GSM1_c.txt.gz", text, compression)
    assert gseio.detect_format(path) == "cell_table"
    expected = re.escape(f"line 1 (gene 'ENSG00000000001'): {said}")
    with pytest.raises(InvalidValueError, match=expected) as info:
        gseio.read_gse_dir(folder)
    assert str(path) in str(info.value)
    with pytest.raises(InvalidValueError, match=expected):
        gseio.read_cell_table(path)


@pytest.mark.parametrize(
    ("first", "cell"),
    [
        ("gene\tNA12878", "NA12878"),  # a Coriell sample, not a missing count
        ("gene\t1", "1"),  # a cell named by a number: the label word makes the line a header
        ("gene_id\tcell-1", "cell-1"),
        ("Geneid\tGSM123", "GSM123"),
        ("Gene ID\tLM2_G15", "LM2_G15"),
        ("\tC1", "C1"),  # pandas' empty corner
        ("ACTB\tabc", "abc"),  # ambiguous (a symbol and a bad count?): a header, as the module notes say
        ('"tracking_id","x"', "c"),  # R's write.csv of a vector: "x" names the values, the file names the cell
    ],
)
def test_genuine_headers_with_odd_cell_names_stay_headers(tmp_path, first, cell):
    sep = "," if first.startswith('"') else "\t"
    body = f"ENSG00000000002{sep}5\nENSG00000000003{sep}0\nENSG00000000004{sep}2\n"
    path = _write(tmp_path / "c.txt", f"{first}\n{body}")
    assert gseio.detect_format(path) == "cell_table"
    adata = gseio.read_cell_table(path)
    assert adata.obs["cell"].tolist() == [cell]
    assert _as_dict(adata) == {"ENSG00000000002": 5.0, "ENSG00000000003": 0.0, "ENSG00000000004": 2.0}


def test_a_symbol_and_a_number_on_line_1_are_data(tmp_path):
    # ambiguous too (a label column named "Cre" and a cell "1"?): read as data, as a number always was
    path = _write(tmp_path / "c.txt", "Cre\t1\nENSG00000000002\t5\n")
    assert _as_dict(gseio.read_cell_table(path)) == {"Cre": 1.0, "ENSG00000000002": 5.0}


@pytest.mark.parametrize(
    ("label", "values", "header"),
    [
        ("ENSG00000000001", ["NA"], False),
        ("ENSMUSG00000000001.3", ["abc"], False),  # a gene id: whatever follows, data
        ("ERCC-00002", ["cell1"], False),
        ("__no_feature", ["x1"], False),
        ("ACTB", ["NA"], False),
        ("ACTB", ["1'000"], False),
        ("ACTB", ["2,5"], False),
        ("ACTB", ["1.2.3"], False),
        ("ACTB", ["#N/A"], False),
        ("ACTB", ["12"], False),
        ("", ["5"], False),  # a count without its gene: the reader says so
        ("ACTB", ["NA12878"], True),
        ("ACTB", ["GSM123"], True),
        ("ENSG00000000001", ["counts"], True),  # a word naming the value column
        ("gene", ["NA"], True),
        ("Gene.Symbol", ["1"], True),
        ("", ["0", "1", "2"], True),  # pandas' to_csv: an empty corner over numbered columns
        ("c1", ["c2", "c3", ""], True),  # a trailing delimiter
        ("ACTB", ["5", "NA"], False),
        ("ACTB", ["1", "2"], True),  # with quotes (R's write.csv), numbers are names
    ],
)
def test_header_rule(label, values, header):
    quoted = [True] * len(values) if (label, values) == ("ACTB", ["1", "2"]) else []
    assert is_header(label, values, quoted=quoted) is header
