"""Large text tables are read block by block: same values and messages, memory bounded by a block.

Blocks are made tiny here (a few hundred bytes) so that small files cross many block boundaries;
expected values come from the numbers written into the files, or from pandas.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import anndata
import h5py
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import gseio
from gseio import _blocks, _open
from gseio._expanded import expanded_size
from gseio._source import Source
from gseio.assemble import CSR_BYTES_PER_HDF5_BYTE, CSR_BYTES_PER_TEXT_BYTE, estimate_matrix_bytes
from gseio.cli import main
from gseio.errors import CorruptFileError, DecompressionBombError, EmptyFileError, FormatError, InvalidValueError
from gseio.readers import _cell_blocks, _table_body, _table_piece, cell_table, wide_table

SRC = Path(gseio.__file__).resolve().parent.parent


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of a few hundred bytes (and transposition blocks of a few values) in every reader.

    Yields the number of blocks each path parsed, so that tests can check they crossed blocks.
    """
    monkeypatch.setattr(wide_table, "TABLE_BLOCK_BYTES", 300)
    monkeypatch.setattr(_table_body, "PARSE_BLOCK_BYTES", 100)
    monkeypatch.setattr(_table_piece, "BLOCK_NNZ", 7)
    monkeypatch.setattr(cell_table, "CELL_BLOCK_BYTES", 200)
    monkeypatch.setattr(_cell_blocks, "PARSE_BLOCK_BYTES", 90)
    counts = {"wide": 0, "cell": 0}

    def counted(original, key):
        def wrapper(*args, **kwargs):
            counts[key] += 1
            return original(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(_table_body.BodyParser, "_block", counted(_table_body.BodyParser._block, "wide"))
    monkeypatch.setattr(_cell_blocks, "_block_genes", counted(_cell_blocks._block_genes, "cell"))
    return counts


# -- blocks of lines --------------------------------------------------------------------------------------


def _text(n: int = 3000) -> bytes:
    rng = np.random.default_rng(n)
    return b"".join(b"ENSG%011d\t%d\n" % (i, v) for i, v in enumerate(rng.integers(0, 1000, n)))


COMPRESSIONS = {
    "none": lambda data: data,
    "gzip": gzip.compress,
    "gzip-members": lambda data: gzip.compress(data[:1000]) + gzip.compress(data[1000:]),
    "bz2": bz2.compress,
    "xz": lzma.compress,
}


@pytest.mark.parametrize("kind", [*COMPRESSIONS, "zip"])
@pytest.mark.parametrize("block", [5, 333, 10**7])
def test_line_blocks_are_whole_lines_that_make_the_file(tmp_path, kind, block):
    data = _text() + b"last line without an end"
    path = tmp_path / "f"
    if kind == "zip":
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("f.txt", data)
    else:
        path.write_bytes(COMPRESSIONS[kind](data))
    blocks = list(_blocks.line_blocks(Source.file(path), block_bytes=block))
    assert b"".join(blocks) == data
    assert all(b.endswith(b"\n") for b in blocks[:-1])
    assert all(blocks)
    if block > len(data):
        assert len(blocks) == 1  # a small file is one block: the readers' one-shot path
    else:
        assert len(blocks) > 1


def test_line_blocks_errors_name_the_file(tmp_path):
    empty = tmp_path / "empty.txt.gz"
    empty.write_bytes(gzip.compress(b""))
    with pytest.raises(EmptyFileError, match="empty after gzip decompression"):
        list(_blocks.line_blocks(Source.file(empty)))
    packed = gzip.compress(_text())
    truncated = tmp_path / "cut.txt.gz"
    truncated.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(CorruptFileError, match="truncated") as info:
        list(_blocks.line_blocks(Source.file(truncated), block_bytes=1000))
    assert str(truncated) in str(info.value)
    padded = tmp_path / "padded.txt.gz"
    padded.write_bytes(packed + b"\0" * 100)  # zero padding after the data is accepted, as by read_bytes
    assert b"".join(_blocks.line_blocks(Source.file(padded))) == _text()
    junk = tmp_path / "junk.txt.gz"
    junk.write_bytes(packed + b"not gzip")
    with pytest.raises(CorruptFileError, match="8 bytes after the end of the gzip data"):
        list(_blocks.line_blocks(Source.file(junk)))


def test_line_blocks_stop_a_decompression_bomb(tmp_path):
    bomb = tmp_path / "bomb.txt.gz"
    bomb.write_bytes(gzip.compress(b"G\t1\n" * (20 << 20)))  # 80 MB of lines from ~80 kB
    with _open.expansion_limit(10), pytest.raises(DecompressionBombError):
        for _ in _blocks.line_blocks(Source.file(bomb), block_bytes=1 << 20):
            pass


# -- wide tables in blocks --------------------------------------------------------------------------------


def _write_table(path: Path, values: np.ndarray, rows: list[str], columns: list[str], *, sep: str = "\t",
                 quote: bool = False, crlf: bool = False, blank_every: int = 0, comment_every: int = 0,
                 trailing: bool = False, corner: str = "gene") -> None:  # fmt: skip
    """Write ``values`` (rows x columns) as a table; numbers as ``repr`` (read back exactly)."""
    end = "\r\n" if crlf else "\n"
    name = (lambda s: f'"{s}"') if quote else (lambda s: s)
    lines = [sep.join([name(corner), *map(name, columns)]) + (sep if trailing else "")]
    for i, label in enumerate(rows):
        numbers = [repr(float(v)) if v != int(v) else str(int(v)) for v in values[i]]
        lines.append(sep.join([name(label), *numbers]) + (sep if trailing else ""))
        if blank_every and i % blank_every == 1:
            lines.append("")
        if comment_every and i % comment_every == 2:
            lines.append("# a comment inside the table")
    path.write_bytes((end.join(lines) + end).encode())


def _values(rng: np.random.Generator, shape: tuple[int, int], kind: str) -> np.ndarray:
    values = rng.integers(1, 60, size=shape).astype(float)
    if kind == "float":
        values = values + rng.random(shape)
    elif kind == "large":
        values *= 2.0**30  # past float32's exact integers: float64 values
    return values * (rng.random(shape) < 0.3)


@pytest.mark.parametrize("seed", range(12))
def test_wide_tables_read_in_blocks_hold_the_values_written(small_blocks, tmp_path, seed):
    rng = np.random.default_rng(seed)
    genes_by_cells = seed % 2 == 0
    n_genes, n_cells = [(40, 9), (7, 50), (3, 120), (90, 2)][seed % 4]
    genes = [f"ENSG{i:011d}" for i in range(n_genes)]
    cells = [f"AAACCTG{j:05d}-1" for j in range(n_cells)]
    values = _values(rng, (n_genes, n_cells), ["int", "float", "large"][seed % 3])  # genes x cells
    sep = ["\t", ",", " "][seed % 3]
    path = tmp_path / ("t.csv" if sep == "," else "t.txt")
    table, rows, columns = (values, genes, cells) if genes_by_cells else (values.T, cells, genes)
    _write_table(path, table, rows, columns, sep=sep, quote=sep == "," and seed % 4 == 1, crlf=seed % 5 == 0,
                 blank_every=7 * (seed % 3 == 1), comment_every=11 * (seed % 4 == 3),
                 trailing=sep != " " and seed % 6 == 2)  # fmt: skip
    if seed % 4 == 0:
        path.write_bytes(gzip.compress(path.read_bytes()))
    adata = gseio.read_wide_table(path)
    assert adata.obs_names.tolist() == cells
    assert adata.var_names.tolist() == genes
    X = adata.X.toarray()
    assert X.dtype == (np.float64 if seed % 3 else np.float32)
    np.testing.assert_array_equal(X, values.T)
    assert adata.X.nnz == np.count_nonzero(values)
    assert adata.X.has_canonical_format
    assert small_blocks["wide"] >= min(5, len(rows))  # blocks of a row or two


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("wide_matrix/gemma/GSE19166_expression_count.test.txt", {"sep": "\t"}),
        ("wide_matrix/pasilla/pasilla_gene_counts.tsv", {"sep": "\t"}),
        ("wide_matrix/pytximport/fabry_disease/counts_tximport_no.csv", {"sep": ","}),
        ("dropseq_dge/test_with_header.dge.txt.gz", {"sep": "\t", "comment": "#"}),
        ("gct/rnaseqc/downsampled.bam.gene_reads.gct", {"sep": "\t", "skiprows": 2}),
    ],
)
def test_real_wide_tables_read_in_blocks_equal_pandas(small_blocks, realdata, name, kwargs):
    path = realdata / name
    frame = pd.read_csv(path, index_col=0, float_precision="round_trip", **kwargs)
    frame = frame.drop(columns=[c for c in frame.columns if c == "Description"])  # GCT's symbols
    adata = gseio.read(path)
    if name.endswith(".gct"):  # one column named Counts: the file names the sample
        assert adata.obs_names.tolist() == ["downsampled.bam.gene_reads"]
    else:
        assert adata.obs_names.tolist() == [str(c) for c in frame.columns]
    assert adata.var_names.tolist() == [str(g) for g in frame.index]
    np.testing.assert_array_equal(adata.X.toarray(), frame.to_numpy().T)


def test_htseq_counters_and_repeated_genes_in_blocks(small_blocks, tmp_path):
    rng = np.random.default_rng(7)
    genes = [f"G{i}" for i in range(30)] + ["G3", "G4", "__no_feature", "__ambiguous"]
    cells = [f"AAACCCGGG{j:03d}-1" for j in range(25)]
    values = rng.integers(0, 5, size=(len(genes), len(cells))).astype(float)
    path = tmp_path / "htseq_barcodes.tsv"
    _write_table(path, values, genes, cells)
    for policy in ("sum", "first"):
        adata = gseio.read_wide_table(path, duplicate_genes=policy)
        expected = pd.DataFrame(values[:-2], index=genes[:-2]).groupby(level=0, sort=False)
        expected = expected.sum() if policy == "sum" else expected.first()
        assert adata.var_names.tolist() == expected.index.tolist()
        np.testing.assert_array_equal(adata.X.toarray(), expected.to_numpy().T)
        np.testing.assert_array_equal(adata.obs["htseq_no_feature"].to_numpy(), values[-2])
        np.testing.assert_array_equal(adata.obs["htseq_ambiguous"].to_numpy(), values[-1])
    with pytest.raises(FormatError, match=r"2 rows repeat a gene name \(G3, G4\)"):
        gseio.read_wide_table(path, duplicate_genes="error")
    transposed = tmp_path / "cells_by_genes.tsv"  # counters as columns, cells as rows
    _write_table(transposed, values.T, cells, genes, corner="cell")
    adata = gseio.read_wide_table(transposed, orientation="cells_by_genes", duplicate_genes="first")
    assert adata.var_names.tolist() == genes[:30]
    np.testing.assert_array_equal(adata.X.toarray(), values[:30].T)
    np.testing.assert_array_equal(adata.obs["htseq_no_feature"].to_numpy(), values[-2])


def test_quoted_labels_in_blocks(small_blocks, tmp_path):
    rows = ['"A ""x"" 1"', '"B, y"', "C", '"D"'] * 15
    body = "".join(f"{label},{i},{i % 3}\n" for i, label in enumerate(rows))
    path = tmp_path / "q.csv"
    path.write_text('"gene","c1","c2"\n' + body)
    # a quoted quote is unquoted as R's read.csv and pandas do, and then refused as a name the platform
    # cannot read back (see test_names): the label was split and unquoted right, at its line
    with pytest.raises(gseio.errors.FormatError, match=r"line 2: the gene name 'A \"x\" 1' holds a double quote"):
        gseio.read_wide_table(path, orientation="genes_by_cells", duplicate_genes="first")
    rows = ['"A x"', '"B, y"', "C", '"D"'] * 15
    path.write_text('"gene","c1","c2"\n' + "".join(f"{label},{i},{i % 3}\n" for i, label in enumerate(rows)))
    adata = gseio.read_wide_table(path, orientation="genes_by_cells", duplicate_genes="first")
    assert adata.var_names.tolist() == ["A x", "B, y", "C", "D"]  # as R's read.csv and pandas read them
    assert adata.X.toarray().tolist() == [[0, 1, 2, 3], [0, 1, 2, 0]]
    # a quote inside a field is a character (the line-by-line split takes over), refused as above
    path.write_text("gene,c1,c2\n" + "".join(f'G{i}"5,{i},1\n' for i in range(40)))
    with pytest.raises(gseio.errors.FormatError, match=r"line 2: the gene name 'G0\"5' holds a double quote"):
        gseio.read_wide_table(path)


def _big_table(path: Path, n: int = 60, *, value: str | None = None, at: tuple[int, int] = (0, 0),
               label: str | None = None, extra: str = "") -> None:  # fmt: skip
    rows = []
    for i in range(n):
        fields = [f"ENSG{i:011d}", str(i % 4), "1", str(i % 2)]
        if i == at[0]:
            if value is not None:
                fields[at[1]] = value
            if label is not None:
                fields[0] = label
            fields.append(extra) if extra else None
        rows.append("\t".join(fields))
    path.write_text("gene\tc1\tc2\tc3\n" + "\n".join(rows) + "\n")


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        ("abc", InvalidValueError, r"line 50 \('ENSG00000000048'\), column 3 \('c2'\): 'abc' is not a number"),
        ("-1", InvalidValueError, r"line 50 \('ENSG00000000048'\), column 3 \('c2'\): count -1 is negative"),
        ("", InvalidValueError, r"line 50 \('ENSG00000000048'\), column 3 \('c2'\): the value is missing"),
        ("NA", InvalidValueError, r"line 50 \('ENSG00000000048'\), column 3 \('c2'\): the value is missing"),
        ("nan", InvalidValueError, r"line 50 \('ENSG00000000048'\), column 3 \('c2'\): the value is missing"),
        ("inf", InvalidValueError, r"line 50 \('ENSG00000000048'\), column 3 \('c2'\): count inf is negative"),
        ("1e400", InvalidValueError, r"column 3 \('c2'\): count inf is negative, NaN or infinite"),
    ],
)
def test_bad_values_far_into_a_table_are_named_by_line(small_blocks, tmp_path, value, error, message):
    path = tmp_path / "bad.tsv"
    _big_table(path, value=value, at=(48, 2))
    with pytest.raises(error, match=message) as info:
        gseio.read_wide_table(path)
    assert str(path) in str(info.value)


def test_bad_rows_far_into_a_table_are_named_by_line(small_blocks, tmp_path):
    path = tmp_path / "bad.tsv"
    _big_table(path, at=(45, 0), extra="7")
    with pytest.raises(
        FormatError, match=r"line 47: expected 4 columns, got 5: 'ENSG00000000045\\t1\\t1\\t1\\t7'"
    ):
        gseio.read_wide_table(path)
    _big_table(path, at=(52, 0), label="")
    with pytest.raises(FormatError, match="line 54 has an empty label in the first column"):
        gseio.read_wide_table(path)
    path.write_text("gene,c1\n" + "".join(f"G{i},{i}\n" for i in range(40)) + '"G40,1\nG41,2\n')
    with pytest.raises(FormatError, match="line 42: a quoted label spans lines; the file has an unbalanced quote"):
        gseio.read_wide_table(path)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="0123456789+-.eEinfaINFA_x ", max_size=12), min_size=1, max_size=30))
def test_the_number_cast_reads_every_value_as_the_csv_reader_does(texts):
    """The fast path (a cast of the value fields) never gives a value the CSV reader would not."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    for text in texts:
        try:
            cast = pc.cast(pa.array([text.encode()], pa.binary()), pa.float64())[0].as_py()
        except pa.ArrowInvalid:
            continue  # the block is read by the CSV reader instead
        if cast != cast:
            continue  # NaN: the CSV reader too
        csv = pacsv.read_csv(
            pa.BufferReader(f'"{text}"\n'.encode()),
            read_options=pacsv.ReadOptions(column_names=["v"]),
            convert_options=pacsv.ConvertOptions(column_types={"v": pa.float64()}),
        )[0][0].as_py()
        assert np.array([cast]).tobytes() == np.array([csv]).tobytes(), text


# -- per-cell files in blocks -----------------------------------------------------------------------------


def _percell(path: Path, rng: np.random.Generator, *, n: int, header: bool, crlf: bool, comments: bool,
             sep: str = "\t") -> list[tuple[str, float]]:  # fmt: skip
    """A per-cell file with repeated genes and htseq counters; its (gene, count) rows."""
    pairs = zip(rng.integers(0, n // 3, n), rng.integers(0, 9, n), strict=True)
    rows = [(f"ENSG{int(g):011d}", float(v)) for g, v in pairs]
    rows += [("__no_feature", 4.0), ("__ambiguous", 2.0), ("__no_feature", 9.0)]
    end = "\r\n" if crlf else "\n"
    lines = [f"gene{sep}cellA"] if header else []
    for i, (g, v) in enumerate(rows):
        lines.append(f"{g}{sep}{int(v)}")
        if comments and i % 17 == 3:
            lines += ["# a comment", ""]
    path.write_text(end.join(lines) + end)
    return rows


@pytest.mark.parametrize("seed", range(6))
def test_large_percell_files_read_in_blocks_equal_a_plain_reading(small_blocks, tmp_path, seed):
    rng = np.random.default_rng(seed)
    path = tmp_path / "GSM1_x.counts.txt"
    rows = _percell(path, rng, n=300, header=seed % 2 == 0, crlf=seed % 3 == 0, comments=seed % 2 == 1,
                    sep=["\t", ",", " "][seed % 3])  # fmt: skip
    genes = [(g, v) for g, v in rows if not g.startswith("__")]
    frame = pd.DataFrame(genes, columns=["gene", "count"]).groupby("gene", sort=False)["count"]
    for policy, expected in (("sum", frame.sum()), ("first", frame.first())):
        adata = gseio.read_cell_table(path, duplicate_genes=policy)
        assert adata.obs_names.tolist() == ["cellA" if seed % 2 == 0 else "x"]  # else the file names the cell
        nonzero = expected[expected != 0]
        assert adata.var_names.tolist() == expected.index.tolist()
        np.testing.assert_array_equal(adata.X.toarray()[0], expected.to_numpy())
        assert adata.X.nnz == len(nonzero)
        assert adata.obs["htseq_no_feature"].tolist() == [9.0]  # the last line of a counter wins
        assert adata.obs["htseq_ambiguous"].tolist() == [2.0]
        assert adata.uns["gseio"]["n_duplicate_gene_rows"] == len(genes) - len(expected)
    assert small_blocks["cell"] > 10
    names = pd.Series([g for g, _ in genes])
    repeated = names[names.duplicated()].unique().tolist()
    with pytest.raises(FormatError) as info:
        gseio.read_cell_table(path, duplicate_genes="error")
    listed = ", ".join(repeated[:5]) + (", ..." if len(repeated) > 5 else "")
    assert f"{len(genes) - len(expected)} rows repeat a gene name ({listed})" in str(info.value)


def test_large_percell_file_errors_name_the_line(small_blocks, tmp_path):
    path = tmp_path / "c.txt"
    lines = [f"G{i}\t{i}" for i in range(80)]
    lines[61] = "G61\t-2"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InvalidValueError, match=r"line 62 \(gene 'G61'\): count -2 is negative"):
        gseio.read_cell_table(path)
    lines[61] = "\t2"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(FormatError, match="line 62 has an empty gene name"):
        gseio.read_cell_table(path)
    path.write_text("G1\t1e308\n" * 40)
    with pytest.raises(InvalidValueError, match=r"gene 'G1', which the file repeats \(line 1 first\), sum beyond"):
        gseio.read_cell_table(path)


# -- memory -----------------------------------------------------------------------------------------------

_PEAK = """
import resource, sys
import gseio.assemble
gseio.assemble.read(sys.argv[1], format=sys.argv[2])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _peak_mb(path: Path, fmt: str) -> float:
    """Peak resident memory (MB) of a fresh interpreter reading ``path``."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run([sys.executable, "-c", _PEAK, str(path), fmt], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    return int(done.stdout.split()[-1]) / 1024


@pytest.mark.slow
def test_wide_and_repetitive_tables_read_in_bounded_memory(tmp_path):
    # the whole-table reader took ~1.2 GB for the wide table and ~1 GB for the repeated lines
    rng = np.random.default_rng(0)
    words = np.array([str(i).encode() for i in range(10)], dtype=object)
    wide = tmp_path / "wide.txt.gz"
    with gzip.open(wide, "wb", compresslevel=1) as fh:
        fh.write(b"gene\t" + b"\t".join(b"AAAC%08d-1" % j for j in range(100_000)) + b"\n")
        for i in range(60):
            counts = np.where(rng.random(100_000) < 0.05, rng.integers(1, 9, 100_000), 0)
            fh.write(b"ENSG%011d\t" % i + b"\t".join(words[counts].tolist()) + b"\n")
    repeated = tmp_path / "cell.txt.gz"
    repeated.write_bytes(gzip.compress(b"G1\t1\n" * 5_000_000, compresslevel=9))  # 25 MB: several blocks
    tiny = tmp_path / "tiny.txt"
    tiny.write_text("G1\t1\nG2\t2\n")
    baseline = _peak_mb(tiny, "cell_table")  # the libraries and machinery
    assert _peak_mb(wide, "wide_table") - baseline < 300  # the result is 2.4 MB of CSR
    assert _peak_mb(repeated, "cell_table") - baseline < 300


# -- the memory estimate ----------------------------------------------------------------------------------


def test_expanded_size_is_exact_where_the_format_records_it(tmp_path):
    data = _text(200_000)  # 4.4 MB
    cases = {
        "a.txt": data,
        "a.txt.gz": gzip.compress(data),
        "a.txt.xz": lzma.compress(data),
        "empty.txt": b"",
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
    with zipfile.ZipFile(tmp_path / "a.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.txt", data)
    for name in [*cases, "a.zip"]:
        assert expanded_size(Source.file(tmp_path / name)) == (0 if name == "empty.txt" else len(data)), name


def test_expanded_size_samples_what_records_no_size(tmp_path):
    data = _text(600_000)  # 13 MB: more than is sampled
    (tmp_path / "a.txt.bz2").write_bytes(bz2.compress(data))
    (tmp_path / "members.txt.gz").write_bytes(gzip.compress(data[:-100]) + gzip.compress(data[-100:]))
    (tmp_path / "two.txt.xz").write_bytes(lzma.compress(data[:5000]) + lzma.compress(data[5000:]))
    for name in ("a.txt.bz2", "members.txt.gz", "two.txt.xz"):
        estimate = expanded_size(Source.file(tmp_path / name))
        assert len(data) <= estimate <= 1.6 * len(data), name
    cut = gzip.compress(data)[:50_000]  # a damaged trailer is not believed
    (tmp_path / "cut.txt.gz").write_bytes(cut)
    assert expanded_size(Source.file(tmp_path / "cut.txt.gz")) < 100 * len(cut)


def test_estimate_counts_text_by_its_decompressed_size(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    text = b"G1\t1\n" * 200_000
    (folder / "GSM1_a.txt.gz").write_bytes(gzip.compress(text, compresslevel=9))
    (folder / "GSM2_b.txt").write_bytes(text)
    with h5py.File(folder / "GSM3_c.h5", "w") as f:
        f["x"] = np.arange(1000)
    h5_size = (folder / "GSM3_c.h5").stat().st_size
    expected = CSR_BYTES_PER_TEXT_BYTE * 2 * len(text) + CSR_BYTES_PER_HDF5_BYTE * h5_size
    assert estimate_matrix_bytes(folder) == int(expected)


def test_a_small_budget_sends_a_highly_compressed_table_out_of_core(tmp_path):
    folder = tmp_path / "GSE1"
    folder.mkdir()
    rows = "".join(f"ENSG{i:011d}\t" + "\t".join(["0"] * 399 + ["3"]) + "\n" for i in range(2000))
    text = ("gene\t" + "\t".join(f"AAAC{j:06d}-1" for j in range(400)) + "\n" + rows).encode()
    (folder / "GSE1_counts.txt.gz").write_bytes(gzip.compress(text, compresslevel=9))
    budget = int(len(text) * CSR_BYTES_PER_TEXT_BYTE) - 1  # under the estimate, far over 3x the file
    runner = CliRunner()
    result = runner.invoke(main, ["build", str(folder), "-o", str(tmp_path / "out"), "--max-memory", str(budget)])
    assert result.exit_code == 0, result.output
    assert "out of core" in result.output
    (h5ad,) = (tmp_path / "out").glob("*.h5ad")
    built = anndata.read_h5ad(h5ad)
    assert built.shape == (400, 2000)
    assert built.X.sum() == 3 * 2000
