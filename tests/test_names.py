"""Cell and gene names the platform can read back (gseio.readers._names), in every reader and the engine.

The platform reads ``cellID_rawCounts.tsv`` and ``genes_rawCounts.tsv`` with ``pandas.read_csv(sep="\\t")``:
the reference here is that call itself, on columns written as the template writer writes them. The
per-format matrix of bad names is in tests/test_bad_values.py; this module tests the rule, the stripping,
the engine's backstop and whole builds.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import random
import re
import shutil

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy import sparse

import gseio
from gseio import _registry
from gseio._piece import GeneBlock, Piece
from gseio.cli import main
from gseio.errors import FormatError, GseioWarning
from gseio.readers import _names

STRIPPED = "stripped of leading or trailing whitespace"


def _read_back(names: list[str]) -> pd.Series:
    """A one-column table of ``names`` as the template writer writes it, read as the platform reads it."""
    return pd.read_csv(io.StringIO("genes\n" + "\n".join(names) + "\n"), sep="\t")["genes"]


def _comes_back(names: list[str]) -> bool:
    column = _read_back(names)
    return len(column) == len(names) and not column.isna().any() and [str(v) for v in column] == names


def _survives(name: str) -> bool:
    """Whether pandas gives ``name`` back as itself alone, among whole numbers and among text."""
    return all(_comes_back(column) for column in ([name], ["1", name], [name, "7"], ["ACTB", name]))


CANDIDATES = [
    "ACTB", "Gene 3", "α-actin", "#x", "x#", "1-1", "2024-01-01", "1/2", "1 2", "- 1", "-", "+", ".", "e5",
    "1", "0", "-12", "10", "12345678901234567890", "-9223372036854775809", "True", "False",
    "01", "00", "+1", "-0", "1.0", "1.5", "1.", ".5", "1e5", "1E5", "1e-5", "0e0", "00001",
    "inf", "Inf", "-inf", "+inf", "Infinity", "-Infinity", "TRUE", "true", "FALSE", "false", "tRUE",
    "nan", "NaN", "NA", "null", "None", "N/A", "n/a", "#N/A", "<NA>", "NULL", "-nan", "-NaN", "1.#IND",
    "#N/A N/A", "-1.#QNAN", "NAN", "Nan", "none", "NONE", "nil", "NA_1", "yes", "T", "1e", "0x10", "1,000",
    "1_000", "٣", "１", "Inf5", "NaN5",
]  # fmt: skip
#: Refused although pandas would give them back: a double quote (the template writer refuses it, and a
#: name that starts with one is quoted text to pandas) and a float literal beyond the float range (pandas
#: keeps it as text; gseio calls it a number, as no gene is named so).
REFUSED_ON_PURPOSE = ('a"b', 'ab"', "1e400")


@pytest.mark.parametrize("name", CANDIDATES + list(REFUSED_ON_PURPOSE))
def test_a_name_is_accepted_exactly_when_pandas_reads_it_back(name):
    accepted = _names.problem(name) is None
    if name in REFUSED_ON_PURPOSE:
        assert not accepted
        return
    assert accepted == _survives(name), _names.problem(name)


def test_the_missing_markers_are_those_pandas_reads_as_missing():
    markers = _names.na_values()
    assert "NA" in markers
    assert "nan" in markers
    for marker in markers - {""}:  # ("": a blank line, which pandas skips; see the blank names)
        assert _read_back(["ACTB", marker]).isna().tolist() == [False, True], marker
    for near in ("NAN", "Nan", "none", "NONE", "nil", "NA_1", "N A"):
        assert near not in markers
        assert not _read_back(["ACTB", near]).isna().any(), near


def test_blank_padded_and_forbidden_names():
    assert "empty or blank" in _names.problem("  \t ")
    assert _names.problem(" GENE3") == "has leading or trailing whitespace"
    assert _names.problem(" GENE3", padded=False) is None  # (clean strips before it checks)
    for char, label in (("\t", "tab"), ("\n", "line break"), ("\r", "carriage return"), ('"', "double quote"),
                        ("\0", "NUL")):  # fmt: skip
        assert label in _names.problem(f"GE{char}NE")
    assert "not valid text" in _names.problem("cell\udcff")  # an undecodable byte of a file name
    # what the platform would make of them: a blank line is skipped, a NUL ends the name
    assert len(_read_back(["A", "  ", "B"])) == 2
    assert _read_back(["A", "B\0C"]).tolist() == ["A", "B"]


def test_the_first_problem_in_file_order_is_reported():
    """Whatever mix of problems: the name reported is the first one (brute force says which)."""
    good = ["ACTB", "1", "Gene 3", "True", "x"]
    bad = ["", "NA", "01", "a\tb", 'a"b', "1e5", "b\ud800", "null", "a\nb"]
    rng = random.Random(7)
    for _ in range(300):
        names = [rng.choice(good) for _ in range(rng.randint(1, 40))]
        for _ in range(rng.randint(0, 3)):
            names[rng.randrange(len(names))] = rng.choice(bad)
        expected = next((i for i, n in enumerate(names) if _names.problem(n) is not None), None)
        if expected is None:
            _names.check(names, what="gene name", path="f.txt", where=lambda k: f"line {k + 1}")
            continue
        with pytest.raises(FormatError, match=rf"^f\.txt: line {expected + 1}: the gene name") as info:
            _names.check(names, what="gene name", path="f.txt", where=lambda k: f"line {k + 1}")
        assert _names.problem(names[expected]) in str(info.value)


def test_clean_strips_says_so_and_keeps_inner_blanks():
    with pytest.warns(GseioWarning, match=r"^f\.txt: 2 gene names stripped .*first: line 2, 'B '") as record:
        cleaned = _names.clean(["A", "B ", "Gene  3", "\xa0C"], what="gene name", path="f.txt",
                               where=lambda k: f"line {k + 1}")  # fmt: skip
    assert len(record) == 1
    assert cleaned.names.tolist() == ["A", "B", "Gene  3", "C"]
    assert cleaned.note.startswith("2 gene names stripped")
    notes: dict[str, str] = {}
    cleaned.into(notes, "gene_names")
    assert notes == {"gene_names": cleaned.note}
    assert _names.clean(["A", "B"], what="gene name", path="f", where=str).note is None  # (no warning)


def _cell(path, rows: str) -> None:
    path.write_text(rows)


def test_a_padded_gene_joins_its_unpadded_self_across_files(tmp_path):
    _cell(tmp_path / "GSM1_a.txt", "GENE3 \t5\nACTB\t1\n Gene 4\t2\n")
    _cell(tmp_path / "GSM2_b.txt", "GENE3\t2\nACTB\t3\nGene 4\t7\n")
    with pytest.warns(GseioWarning, match=rf"GSM1_a\.txt: 2 gene names {STRIPPED} \(first: line 1, 'GENE3 '\)"):
        adata = gseio.read_gse_dir(tmp_path)
    assert adata.var_names.tolist() == ["GENE3", "ACTB", "Gene 4"]  # "Gene 4": the inner blank is kept
    np.testing.assert_array_equal(adata.X.toarray(), [[5, 1, 2], [2, 3, 7]])
    notes = [json.loads(n) for n in adata.uns["gseio"]["notes"]]
    assert notes[0]["gene_names"].startswith("2 gene names stripped")
    assert "gene_names" not in notes[1]
    report = json.loads(adata.uns["gseio"]["build_report"])
    assert any(STRIPPED in w for w in report["warnings"])


def test_in_memory_and_backed_builds_check_names_alike(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    _cell(src / "GSM1_a.txt", "GENE3 \t5\nACTB\t1\n")
    _cell(src / "GSM2_b.txt", "GENE3\t2\nACTB\t3\n")
    with pytest.warns(GseioWarning, match=STRIPPED):
        memory = gseio.read_gse_dir(src)
    with pytest.warns(GseioWarning, match=STRIPPED):
        backed = gseio.read_gse_dir(src, backed=tmp_path / "b.h5ad")
    assert backed.var_names.tolist() == memory.var_names.tolist() == ["GENE3", "ACTB"]
    np.testing.assert_array_equal(backed.X[:].toarray(), [[5, 1], [2, 3]])
    backed.file.close()
    _cell(src / "GSM3_c.txt", "GENE3\t2\nNA\t3\n")
    for options in ({}, {"backed": tmp_path / "c.h5ad"}):
        with pytest.warns(GseioWarning, match=STRIPPED), pytest.raises(FormatError, match="missing value") as info:
            gseio.read_gse_dir(src, **options)
        assert info.value.path == str(src / "GSM3_c.txt")
        assert "line 2: the gene name 'NA'" in str(info.value)


def test_a_padded_cell_of_the_long_umi_tools_layout_is_one_cell(tmp_path):
    path = tmp_path / "counts.tsv"
    path.write_text("gene\tcell\tcount\nG1\tAAA \t2\nG1\tAAA\t3\nG2\tCCC\t1\n")
    with pytest.warns(GseioWarning, match=rf"1 cell id {STRIPPED} \(first: line 2, 'AAA '\)"):
        adata = gseio.read(path, format="umi_tools")
    assert adata.obs["cell"].tolist() == ["AAA", "CCC"]
    np.testing.assert_array_equal(adata.X.toarray(), [[5, 0], [0, 1]])  # the two AAA lines are one pair
    with pytest.warns(GseioWarning, match=STRIPPED), pytest.raises(FormatError, match="pairs are repeated"):
        gseio.read(path, format="umi_tools", duplicate_genes="error")


def test_quoted_tabs_and_line_breaks_in_a_table_are_refused_at_their_line(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text('gene,c1,c2\nACTB,1,2\n"GE\tNE",3,4\n')
    with pytest.raises(FormatError, match=r"line 3: the gene name 'GE\\tNE' holds a tab") as info:
        gseio.read(path, format="wide_table")
    assert info.value.path == str(path)
    path.write_text('gene\t"c\t1"\tc2\nACTB\t1\t2\n')
    with pytest.raises(FormatError, match=r"header column 2: the cell id 'c\\t1' holds a tab"):
        gseio.read(path, format="wide_table")


@pytest.mark.parametrize(
    ("char", "label"), [("\t", "a tab"), ('"', "a double quote"), ("\r", "a carriage return")]
)
def test_a_forbidden_character_in_a_file_name_names_the_file(tmp_path, char, label):
    src = tmp_path / "in"
    src.mkdir()
    _cell(src / "GSM1_a.txt", "A\t1\nB\t2\n")
    bad = src / f"GSM2_b{char}c.txt"
    _cell(bad, "A\t3\nB\t4\n")
    shown = re.escape(repr(f"b{char}c"))
    with pytest.raises(FormatError, match=rf"the file name: the cell id {shown} holds {label}") as info:
        gseio.read_gse_dir(src)
    assert info.value.path == str(bad)
    adata = gseio.read_gse_dir(src, on_error="skip")  # a bad name is a bad file like any other
    assert adata.obs["cell"].tolist() == ["a"]


def test_names_with_tabs_and_line_breaks_in_an_h5ad_file(tmp_path):
    X = sparse.csr_matrix(np.array([[1, 2], [3, 4]], dtype=np.float32))
    for obs_names, var_names, where in (
        (["c1", "c2"], ["G1", "G\t2"], r"entry 2 of the /var index: the gene name 'G\\t2' holds a tab"),
        (["c1", "c\n2"], ["G1", "G2"], r"entry 2 of the /obs index: the cell id 'c\\n2' holds a line break"),
        (["c1", "NA"], ["G1", "G2"], r"entry 2 of the /obs index: the cell id 'NA' would be read back as a"),
    ):
        path = tmp_path / "x.h5ad"
        ad.AnnData(X=X, obs=pd.DataFrame(index=obs_names), var=pd.DataFrame(index=var_names)).write_h5ad(path)
        with pytest.raises(FormatError, match=where) as info:
            gseio.read(path, format="h5ad")
        assert info.value.path == str(path)


def test_whole_numbers_and_booleans_round_trip_through_the_template(tmp_path):
    genes = ["1", "10", "100", "-3", "True", "Gene 3", "#x"]
    X = sparse.csr_matrix(np.arange(1, 15, dtype=np.float32).reshape(2, 7))
    adata = ad.AnnData(X=X, obs=pd.DataFrame(index=["1", "2"]), var=pd.DataFrame(index=genes))
    for where, names in (("var", genes), ("obs", ["1", "2"])):
        _names.check(names, what=where, path="x", where=str)  # accepted
    gseio.write_template(adata, tmp_path)
    back = pd.read_csv(tmp_path / "genes_rawCounts.tsv", sep="\t")["genes"]
    assert [str(v) for v in back] == genes
    cells = pd.read_csv(tmp_path / "cellID_rawCounts.tsv", sep="\t")["cellID"]
    assert cells.dtype == np.int64  # what the platform gets: numbers, whose str() is the name
    assert [str(v) for v in cells] == ["1", "2"]


def _bad_piece(unit, cells=("c1",), genes=("G1", "G2")) -> Piece:
    return Piece(
        source=str(unit.main), cells=list(cells), genes=GeneBlock.from_names(list(genes)),
        indptr=np.array([0, 1], dtype=np.int64), indices=np.array([0], dtype=np.int32), data=np.array([3.0]),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("cells", "genes", "where"),
    [
        (("NA",), ("G1", "G2"), r"cell 1: the cell id 'NA' would be read back as a missing value"),
        (("c1",), ("G1", " G2"), r"gene 2: the gene name ' G2' has leading or trailing whitespace"),
        (("c\t1",), ("G1", "G2"), r"cell 1: the cell id 'c\\t1' holds a tab"),
    ],
)
def test_the_engine_refuses_what_a_reader_let_through(tmp_path, monkeypatch, cells, genes, where):
    """The backstop: a reader that made a bad name (here a stand-in reader) fails its unit, naming the file."""
    path = tmp_path / "GSM1_a.txt"
    _cell(path, "A\t1\n")
    spec = _registry.get_format("cell_table")
    bad = dataclasses.replace(spec, read_unit=lambda unit, options: [_bad_piece(unit, cells, genes)])
    monkeypatch.setitem(_registry._FORMATS, "cell_table", bad)
    with pytest.raises(FormatError, match=where) as info:
        gseio.read_gse_dir(tmp_path, format="cell_table")
    assert info.value.path == str(path)
    _cell(tmp_path / "GSM2_b.txt", "A\t1\n")
    with pytest.raises(gseio.errors.InputError, match="every one of the 2 inputs was skipped"):
        gseio.read_gse_dir(tmp_path, format="cell_table", on_error="skip")


def test_a_sample_with_a_tab_is_refused(realdata, tmp_path):
    """A 10x folder named with a tab: its barcodes are fine, but the sample would prefix repeated ids."""
    run = tmp_path / "in" / "run\t1"
    shutil.copytree(realdata / "10x_v3/seurat/cr3.0", run)
    with pytest.raises(FormatError, match=r"the sample 'run\\t1' \(from the file or folder names\) holds a tab"):
        gseio.read_gse_dir(tmp_path / "in")


def test_padded_barcodes_and_feature_ids_of_a_10x_folder(realdata, tmp_path):
    folder = tmp_path / "sample"
    shutil.copytree(realdata / "10x_v3/seurat/cr3.0", folder)
    for name, line in (("barcodes.tsv.gz", 1), ("features.tsv.gz", 2)):
        lines = gzip.decompress((folder / name).read_bytes()).decode().split("\n")
        fields = lines[line - 1].split("\t")
        fields[0] = fields[0] + " "
        lines[line - 1] = "\t".join(fields)
        (folder / name).write_bytes(gzip.compress("\n".join(lines).encode()))
    with pytest.warns(GseioWarning, match=STRIPPED) as record:
        adata = gseio.read(folder, format="tenx_mtx")
    messages = [str(w.message) for w in record]
    assert any(m.startswith(f"{folder / 'barcodes.tsv.gz'}: 1 barcode stripped") for m in messages)
    assert any(m.startswith(f"{folder / 'features.tsv.gz'}: 1 feature id stripped") for m in messages)
    assert not any(name.endswith(" ") for name in [*adata.obs["cell"], *adata.var_names])
    notes = json.loads(adata.uns["gseio"]["notes"][0])
    assert notes["cell_names"].startswith("1 barcode stripped")
    assert notes["features"].endswith("(first: line 2, 'ENSG00000237613 ')")


def _build(tmp_path, files: dict[str, str]) -> tuple[object, object]:
    src = tmp_path / "in"
    src.mkdir(exist_ok=True)
    for name, text in files.items():
        _cell(src / name, text)
    out = tmp_path / "out"
    return CliRunner().invoke(main, ["build", str(src), "-o", str(out), "-q"]), out


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("A\t1\n   \t2\n", r"line 2: the gene name is empty or blank"),
        ("A\t1\nNA\t2\n", r"line 2: the gene name 'NA' would be read back as a missing value \(NaN\)"),
        ("A\t1\nnull\t2\n", r"line 2: the gene name 'null' would be read back as a missing value"),
        ("A\t1\nNaN\t2\n", r"line 2: the gene name 'NaN' would be read back as a missing value"),
        ('A\t1\nB"C\t2\n', r"line 2: the gene name 'B\"C' holds a double quote"),
        ("A\t1\n01\t2\n", r"line 2: the gene name '01' would be read back by the platform .* as the number 1"),
    ],
)
def test_a_build_names_the_input_of_a_name_the_platform_cannot_read(tmp_path, text, where):
    result, out = _build(tmp_path, {"GSM1_a.txt": "A\t3\nB\t4\n", "GSM2_b.txt": text})
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert str(tmp_path / "in" / "GSM2_b.txt") in result.output
    assert re.search(where, result.output), result.output
    assert not (out / "genes_rawCounts.tsv").exists()


def test_a_build_joins_a_padded_gene_and_the_platform_reads_it_once(tmp_path):
    with pytest.warns(GseioWarning, match=STRIPPED):
        result, out = _build(tmp_path, {"GSM1_a.txt": "GENE3 \t3\nB\t4\n", "GSM2_b.txt": "GENE3\t1\nB\t2\n"})
    assert result.exit_code == 0, result.output
    genes = pd.read_csv(out / "genes_rawCounts.tsv", sep="\t")["genes"].tolist()
    assert genes == ["GENE3", "B"]
    template = gseio.read_template(out)
    np.testing.assert_array_equal(template.X.toarray(), [[3, 4], [1, 2]])
    report = json.loads((out / "build_report.json").read_text())
    assert any(STRIPPED in w and "GSM1_a.txt" in w for w in report["warnings"])
