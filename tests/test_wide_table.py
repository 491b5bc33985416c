from __future__ import annotations

import contextlib
import gzip
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gseio
from gseio._source import Source
from gseio.errors import FormatError, GseioError, GseioWarning, InvalidValueError, UnknownFormatError
from gseio.readers import dropseq, gct, h5ad, loom, umi_tools, wide_table
from gseio.readers._labels import classify, decide_orientation, label_kind
from gseio.readers._table import find_layout
from gseio.readers.wide_table import read_wide_table

REAL = [
    ("wide_matrix/gemma/GSE19166_expression_count.test.txt", "\t", (6, 199)),
    ("wide_matrix/gemma/GSE29006_expression_count.test.txt", "\t", (4, 199)),
    ("wide_matrix/pasilla/pasilla_gene_counts.tsv", "\t", (7, 14599)),
    ("wide_matrix/pytximport/fabry_disease/counts_tximport_no.csv", ",", (4, 40768)),
    ("umi_tools/UMI-tools/count_single_cells_gene_tag_wide.tsv", "\t", (2, 13)),
]


def _notes(adata) -> dict:
    import json

    return json.loads(adata.uns["gseio"]["notes"][0])


@pytest.mark.parametrize(("name", "sep", "shape"), REAL)
def test_real_wide_tables(realdata, name, sep, shape):
    path = realdata / name
    assert gseio.detect_format(path) == "wide_table"
    expected = pd.read_csv(path, sep=sep, index_col=0)  # genes x samples
    adata = read_wide_table(path)
    assert adata.shape == shape == expected.T.shape
    assert adata.obs_names.tolist() == [str(c) for c in expected.columns]
    assert adata.var_names.tolist() == [str(g) for g in expected.index]
    np.testing.assert_allclose(adata.X.toarray(), expected.to_numpy().T)
    np.testing.assert_allclose(np.asarray(adata.X.sum(axis=1)).ravel(), expected.sum(axis=0).to_numpy())
    assert adata.X.nnz == int((expected.to_numpy() != 0).sum())
    assert _notes(adata)["orientation"].startswith("genes x cells")


@pytest.mark.parametrize(
    "name", ["yeast_RNASeq_excerpt_withbarcodes.tsv", "yeast_RNASeq_excerpt_withbarcodes_chromosome_info.tsv"]
)
def test_real_htseq_barcodes_tables(realdata, name):
    path = realdata / "htseq" / name
    assert gseio.detect_format(path) == "wide_table"
    frame = pd.read_csv(path, sep="\t", index_col=0, keep_default_na=False)
    chromosome = frame.pop(frame.columns[0]) if "chromosome" in name else None
    special = frame.index.str.startswith("__")
    adata = read_wide_table(path)
    assert adata.obs_names.tolist() == ["AAACCCGGGTTT-1", "ACTGACTGACTG-1", "TTTGGGCCCAAA-1"]
    assert adata.var_names.tolist() == frame.index[~special].tolist()
    assert adata.shape == (3, 7124)
    np.testing.assert_array_equal(adata.X.toarray(), frame[~special].to_numpy().T)
    for gene, row in frame[special].iterrows():
        np.testing.assert_array_equal(adata.obs[f"htseq_{gene[2:]}"].to_numpy(), row.to_numpy(dtype=float))
    assert "genes x cells" in _notes(adata)["orientation"]
    assert "barcode" in _notes(adata)["orientation"]
    if chromosome is not None:  # the unnamed chromosome column is a gene annotation, not a cell
        assert adata.var["chromosome"].astype(str).tolist() == chromosome[~special].tolist()


def test_sample_sheet_is_not_a_count_table(realdata):
    # pasilla_sample_annotation.csv: text columns (condition, type) that are no gene annotation
    path = realdata / "wide_matrix" / "pasilla" / "pasilla_sample_annotation.csv"
    with pytest.raises(UnknownFormatError):
        gseio.detect_format(path)
    with pytest.raises(FormatError, match="not a count table") as info:
        read_wide_table(path)
    assert str(path) in str(info.value)


GENES = ["ENSG00000000003", "ENSG00000000005.6", "ERCC-00002", "ENSMUSG00000000001", "ENSG00000000419"]
CELLS = ["AAACCTGAGAAACCAT-1", "AAACCTGAGAAACCGC-1", "TTTGTCATCTTTAGTC-1"]
VALUES = np.array([[0, 3, 1], [2, 0, 0], [0, 0, 0], [7, 1, 5], [1.5, 0, 4]])


def _table(genes_by_cells: bool, *, sep: str = "\t", corner: str = "gene") -> str:
    frame = pd.DataFrame(VALUES, index=GENES, columns=CELLS)
    frame = frame if genes_by_cells else frame.T
    frame.index.name = corner
    return frame.to_csv(sep=sep)


def test_both_orientations_give_the_same_anndata(tmp_path):
    a = tmp_path / "a.tsv"
    b = tmp_path / "b.tsv"
    a.write_text(_table(True, corner=""))
    b.write_text(_table(False, corner=""))
    left, right = read_wide_table(a), read_wide_table(b)
    assert left.obs_names.tolist() == right.obs_names.tolist() == CELLS
    assert left.var_names.tolist() == right.var_names.tolist() == GENES
    np.testing.assert_array_equal(left.X.toarray(), right.X.toarray())
    np.testing.assert_array_equal(left.X.toarray(), VALUES.T)
    assert left.X.nnz == np.count_nonzero(VALUES)
    assert _notes(left)["orientation"].startswith("genes x cells")
    assert _notes(right)["orientation"].startswith("cells x genes")


def test_orientation_override(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text(_table(True))
    flipped = read_wide_table(path, orientation="cells_by_genes")
    assert flipped.obs_names.tolist() == GENES
    assert flipped.var_names.tolist() == CELLS
    assert "set by orientation" in _notes(flipped)["orientation"]
    same = read_wide_table(path, orientation="genes_by_cells")
    np.testing.assert_array_equal(same.X.toarray(), VALUES.T)
    with pytest.raises(ValueError, match="orientation must be one of"):
        read_wide_table(path, orientation="sideways")


def test_undecidable_defaults_to_genes_by_cells(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("x,V1,V2\nfoo,1,2\nbar,3,4\n")
    adata = read_wide_table(path)
    assert adata.obs_names.tolist() == ["V1", "V2"]
    assert "default" in _notes(adata)["orientation"]


def test_annotation_columns_land_in_var(tmp_path):
    text = "# featureCounts-like\nGeneid\tChr\tStart\tEnd\tStrand\tLength\tgene_name\tcellA\tcellB\n"
    text += "ENSG00000000003\tX\t100\t200\t-\t101\tTSPAN6\t5\t0\n"
    text += "ENSG00000000005\tX;X\t1;50\t40;90\t+;+\t82\tTNMD\t0\t2\n"
    path = tmp_path / "fc.txt"
    path.write_text(text)
    adata = read_wide_table(path)
    assert adata.obs_names.tolist() == ["cellA", "cellB"]
    assert adata.var["length"].tolist() == [101.0, 82.0]
    assert adata.var["gene_symbols"].astype(str).tolist() == ["TSPAN6", "TNMD"]
    assert adata.var["chromosome"].astype(str).tolist() == ["X", "X;X"]
    assert adata.var["strand"].astype(str).tolist() == ["-", "+;+"]
    np.testing.assert_array_equal(adata.X.toarray(), [[5, 0], [0, 2]])


@pytest.mark.parametrize("sep", ["\t", ",", " ", "  "])
def test_layout_variants(tmp_path, sep):
    # BOM, CRLF, comment lines, gzip, quoted fields (R write.csv), empty corner
    text = _table(True, sep="," if sep == "," else "\t", corner="")
    if sep.strip() == "":
        text = text.replace("\t", sep).replace("\n" + sep, "\n")
    if sep == ",":
        lines = text.splitlines()
        text = "\n".join(
            [",".join(f'"{f}"' for f in lines[0].split(","))]
            + [f'"{r.split(",", 1)[0]}",{r.split(",", 1)[1]}' for r in lines[1:]]
        )
    raw = ("# a comment\r\n" + text.replace("\n", "\r\n")).encode()
    path = tmp_path / "t.txt.gz"
    path.write_bytes(gzip.compress(b"\xef\xbb\xbf" + raw))
    assert gseio.detect_format(path) == "wide_table"
    adata = read_wide_table(path)
    assert adata.obs_names.tolist() == CELLS
    assert adata.var_names.tolist() == GENES
    np.testing.assert_array_equal(adata.X.toarray(), VALUES.T)


def test_header_without_corner_r_write_table(tmp_path):
    path = tmp_path / "r.txt"
    path.write_text("c1\tc2\nTSPAN6\t1\t0\nACTB\t4\t2\n")
    adata = read_wide_table(path)
    assert adata.obs_names.tolist() == ["c1", "c2"]
    assert adata.var_names.tolist() == ["TSPAN6", "ACTB"]


def test_normalized_marked_by_name(tmp_path):
    path = tmp_path / "GSE1_TPM.txt"
    path.write_text(_table(True))
    adata = read_wide_table(path)
    assert "TPM" in _notes(adata)["values"]
    counts = tmp_path / "GSE1_counts.txt"
    counts.write_text(_table(True))
    assert "values" not in _notes(read_wide_table(counts))
    from gseio._unit import ReadOptions, Unit

    source = Source.file(path)
    piece = wide_table.read_unit(Unit("wide_table", {"data": source}, source.rel, "s"), ReadOptions())[0]
    assert piece.values == "normalized"


def test_read_gse_dir(realdata, tmp_path):
    folder = tmp_path / "GSE_RAW"
    folder.mkdir()
    for name in ("GSE19166_expression_count.test.txt", "GSE29006_expression_count.test.txt"):
        shutil.copyfile(realdata / "wide_matrix" / "gemma" / name, folder / name)
    adata = gseio.read_gse_dir(folder)
    frames = [
        pd.read_csv(folder / name, sep="\t", index_col=0) for name in sorted(p.name for p in folder.iterdir())
    ]
    expected = pd.concat(frames, axis=1).fillna(0)  # outer join on genes
    assert adata.shape == expected.T.shape == (10, 203)
    assert list(adata.uns["gseio"]["formats"]) == ["wide_table", "wide_table"]
    np.testing.assert_allclose(
        adata[expected.columns.tolist(), expected.index.tolist()].X.toarray(), expected.T.to_numpy()
    )


@pytest.mark.parametrize(
    ("content", "error", "message"),
    [
        ("gene\tc1\tc2\nACTB\t1\t-2\n", InvalidValueError, "negative"),
        ("gene\tc1\tc2\nACTB\t1\tNaN\n", InvalidValueError, "missing or NaN"),
        ("gene\tc1\tc2\nACTB\t1\t\n", InvalidValueError, "missing"),
        (
            "gene\tc1\tc2\nACTB\t1\t2\nGAPDH\t1\tabc\n",
            InvalidValueError,
            r"line 3 \('GAPDH'\), column 3 \('c2'\): 'abc'",
        ),
        ("gene\tc1\tc2\nACTB\t1\t2\nGAPDH\t1\t2\t3\n", FormatError, "line 3: expected 3 columns, got 4"),
        ("gene\tc1\tc2\tc3\tc4\nACTB\t1\t2\n", FormatError, "header has 5 columns but line 2 has 3"),
        ("gene\tc1\tc2\n", FormatError, "no data rows"),
        ("ACTB\t1\t2\nGAPDH\t3\t4\n", FormatError, "htseq"),
        ("gene\tc1\tc2\nACTB\t1\tinf\n", InvalidValueError, "infinite"),
    ],
)
def test_bad_tables_raise_typed_errors_naming_the_file(tmp_path, content, error, message):
    path = tmp_path / "bad.tsv"
    path.write_text(content)
    with pytest.raises(error, match=message) as info:
        read_wide_table(path)
    assert str(path) in str(info.value)


def test_duplicate_genes(tmp_path):
    path = tmp_path / "d.tsv"
    path.write_text("gene\tc1\tc2\nACTB\t1\t2\nGAPDH\t3\t0\nACTB\t5\t1\n")
    assert read_wide_table(path).X.toarray().tolist() == [[6, 3], [3, 0]]
    assert read_wide_table(path, duplicate_genes="first").X.toarray().tolist() == [[1, 3], [2, 0]]
    with pytest.raises(FormatError, match="rows repeat a gene name"):
        read_wide_table(path, duplicate_genes="error")


def test_labels():
    assert label_kind("ENSMUSG00000000001.4") == "ensembl"
    assert label_kind("AAACCCGGGTTT-1") == "barcode"
    assert label_kind("GSM475204") == "sample"
    assert label_kind("LM2_G15") == "well"
    assert classify(["ERCC-00002", "__no_feature"])[1] == {"ercc": 1, "htseq_special": 1}
    assert not decide_orientation(["GSM1", "GSM2"], ["ENSG00000000003"]).genes_by_cells


SNIFFERS = [wide_table.sniff, umi_tools.sniff, dropseq.sniff, gct.sniff, loom.sniff, h5ad.sniff]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=800), text=st.lists(st.text(max_size=20), max_size=20))
def test_sniffers_and_classifier_never_raise(tmp_path, data, text):
    path = tmp_path / "junk.txt"
    path.write_bytes(data)
    source = Source.file(path)
    for sniff in SNIFFERS:
        assert sniff(data, source) in (0.0, 0.5, 1.0)
        assert sniff(b"gene\t" + data, source) in (0.0, 0.5, 1.0)
    decide_orientation(text, list(reversed(text)), corner=text[0] if text else "")
    # junk is seldom UTF-8: names read as Windows-1252 are warned about, which is no failure here
    with contextlib.suppress(GseioError), warnings.catch_warnings():
        warnings.simplefilter("ignore", GseioWarning)
        read_wide_table(path)


def test_a_headerless_line_with_a_bad_count_is_not_a_wide_header(tmp_path):
    # "ENSG...<TAB>5<TAB>NA" ends in no number: it was read as a header of cells "5" and "NA"
    path = tmp_path / "t.tsv"
    path.write_text("ENSG00000000001\t5\tNA\nENSG00000000002\t1\t2\nENSG00000000003\t0\t4\n")
    assert wide_table.sniff(path.read_bytes(), Source.file(path)) == 0.0
    with pytest.raises(FormatError, match="the first line is not a header"):
        read_wide_table(path)


@pytest.mark.parametrize(
    ("text", "cells"),
    [
        ('"X","1","2"\n"ACTB",5,1\n"GAPDH",3,4\n', ["1", "2"]),  # R: names quoted, numbers not
        ("\t0\t1\nACTB\t5\t1\nGAPDH\t3\t4\n", ["0", "1"]),  # pandas: an empty corner
        ("Gene.Symbol\t1\t2\nACTB\t5\t1\nGAPDH\t3\t4\n", ["1", "2"]),  # a label word
    ],
)
def test_headers_of_cells_named_by_numbers(tmp_path, text, cells):
    path = tmp_path / "t.csv"
    path.write_text(text)
    assert gseio.detect_format(path) == "wide_table"
    adata = read_wide_table(path)
    assert adata.obs_names.tolist() == cells
    assert adata.var_names.tolist() == ["ACTB", "GAPDH"]
    assert adata.X.toarray().tolist() == [[5, 3], [1, 4]]


def test_every_field_quoted_is_judged_by_content(tmp_path):
    # QUOTE_ALL quotes numbers too: the quotes say nothing, the Ensembl id says data
    path = tmp_path / "t.csv"
    path.write_text('"ENSG00000000001","5","7"\n"ENSG00000000002","1","2"\n')
    layout = find_layout(path.read_bytes(), path)
    assert not wide_table.has_header(layout)
