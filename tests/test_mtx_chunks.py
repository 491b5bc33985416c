"""Matrix Market bodies parsed a chunk at a time (gseio.readers._mtx), with the chunk size made tiny."""

from __future__ import annotations

import gzip
import io
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from scipy import sparse

import gseio
from gseio import _open
from gseio.errors import FormatError, InvalidValueError
from gseio.readers import _mtx
from gseio.readers.tenx_mtx import read_10x_mtx

BANNER = "%%MatrixMarket matrix coordinate integer general\n"


@pytest.fixture(autouse=True)
def tiny_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """A few lines per chunk, so that every test matrix spans many chunks."""
    monkeypatch.setattr(_mtx, "_CHUNK_BYTES", 64)


def _read(path: Path) -> sparse.coo_matrix:
    triplets = _mtx.read_matrix_market(_open.as_source(path))
    rows, cols = triplets.entries(0), triplets.entries(1)
    return sparse.coo_matrix((triplets.data, (rows, cols)), shape=triplets.shape)


def _write(path: Path, text: str) -> Path:
    path.write_bytes(gzip.compress(text.encode()) if path.suffix == ".gz" else text.encode())
    return path


def _matrix(order: str, seed: int = 0) -> sparse.coo_matrix:
    """A 40 x 25 count matrix, its entries by column (as Cell Ranger), by row, or shuffled."""
    rng = np.random.default_rng(seed)
    matrix = sparse.random(40, 25, density=0.3, random_state=rng, format="coo")
    matrix.data = np.ceil(matrix.data * 30)
    key = {"columns": np.lexsort((matrix.row, matrix.col)), "rows": np.lexsort((matrix.col, matrix.row))}
    order_ = key.get(order, rng.permutation(matrix.nnz))
    return sparse.coo_matrix((matrix.data[order_], (matrix.row[order_], matrix.col[order_])), shape=matrix.shape)


def _mtx_text(matrix: sparse.coo_matrix, field: str = "integer") -> str:
    buffer = io.BytesIO()
    scipy.io.mmwrite(buffer, matrix, field=field)
    return buffer.getvalue().decode()


@pytest.mark.parametrize("order", ["columns", "rows", "shuffled"])
@pytest.mark.parametrize("name", ["matrix.mtx", "matrix.mtx.gz"])
def test_many_chunks_read_like_mmread(tmp_path, order, name):
    matrix = _matrix(order)
    path = _write(tmp_path / name, _mtx_text(matrix))
    expected = scipy.io.mmread(path)
    got = _read(path)
    assert got.shape == expected.shape
    assert (got.tocsr() != expected.tocsr()).nnz == 0
    triplets = _mtx.read_matrix_market(_open.as_source(path))
    assert triplets.data.dtype == np.float32  # small integers: float32 holds them exactly
    # an axis in order is kept as counts, not as an index per entry
    assert (triplets.index[1] is None) == (order == "columns")
    assert (triplets.index[0] is None) == (order == "rows")


def test_an_axis_out_of_order_late_gets_an_index(tmp_path):
    matrix = _matrix("columns")
    row, col, data = matrix.row.copy(), matrix.col.copy(), matrix.data
    col[-1], col[-2] = col[-2], col[-1] - 1  # the columns go back once, in the last chunk
    moved = sparse.coo_matrix((data, (row, col)), shape=matrix.shape)
    lines = "".join(f"{r + 1} {c + 1} {int(v)}\n" for r, c, v in zip(row, col, data, strict=True))
    path = _write(tmp_path / "matrix.mtx", f"{BANNER}40 25 {matrix.nnz}\n{lines}")
    triplets = _mtx.read_matrix_market(_open.as_source(path))
    assert triplets.index[1] is not None
    np.testing.assert_array_equal(triplets.entries(1), col)
    assert (_read(path).tocsr() != moved.tocsr()).nnz == 0


def test_cells_in_order_build_the_same_piece(tmp_path):
    matrix = _matrix("columns")  # genes x cells, by cell
    _write(tmp_path / "matrix.mtx", _mtx_text(matrix))
    (tmp_path / "barcodes.tsv").write_text("".join(f"c{i}\n" for i in range(25)))
    (tmp_path / "features.tsv").write_text("".join(f"g{i}\tG{i}\tGene Expression\n" for i in range(40)))
    adata = read_10x_mtx(tmp_path)
    assert (matrix.T.tocsr() != adata.X).nnz == 0
    assert adata.X.dtype == np.float32


@pytest.mark.parametrize("late", ["2.5", "16777216", "1e300"])
def test_a_value_float32_cannot_hold_widens_to_float64_exactly(tmp_path, late):
    matrix = _matrix("columns")
    text = _mtx_text(matrix).rstrip("\n")
    text = text[: text.rindex(" ") + 1] + late + "\n"  # the very last value
    path = _write(tmp_path / "matrix.mtx", text)
    triplets = _mtx.read_matrix_market(_open.as_source(path))
    assert triplets.data.dtype == np.float64
    expected = scipy.io.mmread(io.BytesIO(text.replace(" integer ", " real ").encode()))
    np.testing.assert_array_equal(triplets.data, np.asarray(expected.data, dtype=np.float64))
    assert triplets.data[-1] == float(late)


def _body(n: int) -> list[str]:
    return [f"{1 + i % 3} {1 + i // 3} {1 + i % 5}\n" for i in range(n)]  # 3 rows, by column


@pytest.mark.parametrize(
    ("line", "bad", "error", "match"),
    [
        (40, "2 14 -3", InvalidValueError, r"entry 40 \(row 2, column 14\): count -3 is negative"),
        (40, "2 14 nan", InvalidValueError, r"entry 40 \(row 2, column 14\): count nan"),
        (40, "2 14 x", InvalidValueError, r"line 43: the value 'x' is not a number"),
        (40, "4 14 1", FormatError, "outside the shape"),
    ],
)
def test_errors_in_a_late_chunk_name_the_right_entry(tmp_path, line, bad, error, match):
    body = _body(45)
    body[line - 1] = bad + "\n"
    path = _write(tmp_path / "matrix.mtx.gz", f"{BANNER}% a comment\n3 15 45\n" + "".join(body))
    with pytest.raises(error, match=match) as info:
        _read(path)
    assert str(path) in str(info.value)


def test_more_entries_than_declared_names_the_line(tmp_path):
    path = _write(tmp_path / "matrix.mtx", f"{BANNER}3 15 40\n" + "".join(_body(45)))
    with pytest.raises(FormatError, match=r"more entries than its size line declares \(40\): line 43"):
        _read(path)


def test_fewer_entries_than_declared(tmp_path):
    path = _write(tmp_path / "matrix.mtx", f"{BANNER}3 15 45\n" + "".join(_body(44)))
    with pytest.raises(FormatError, match=r"fewer entries than its size line declares \(44 of 45\)"):
        _read(path)


def test_blank_lines_crlf_and_no_final_newline(tmp_path):
    body = _body(45)
    body[10] = "\n  \n" + body[10]  # blank lines mid-body are skipped, as by the parser
    text = f"{BANNER}%\n\n% comments\n3 15 45\n" + "".join(body) + "\n\n \n"
    expected = _read(_write(tmp_path / "plain.mtx", f"{BANNER}3 15 45\n" + "".join(_body(45))))
    for name, variant in [("blank.mtx", text), ("crlf.mtx", text.replace("\n", "\r\n")),
                          ("open.mtx", text.rstrip())]:  # fmt: skip
        got = _read(_write(tmp_path / name, variant))
        assert (got.tocsr() != expected.tocsr()).nnz == 0, name


def test_blank_lines_do_not_count_as_extra_entries(tmp_path):
    path = _write(tmp_path / "matrix.mtx", f"{BANNER}3 15 45\n" + "".join(_body(45)) + "\n" * 50)
    assert _read(path).nnz == 45
    bad = _body(45)
    bad[30] = "\n\n2 11 x\n"
    with pytest.raises(InvalidValueError, match=r"line 35:"):  # the file's line, blank lines included
        _read(_write(tmp_path / "bad.mtx", f"{BANNER}3 15 46\n" + "".join(bad)))


def test_a_header_longer_than_a_chunk(tmp_path):
    comments = "".join(f"% comment line {i} that is long enough\n" for i in range(20))
    path = _write(tmp_path / "matrix.mtx", f"{BANNER}{comments}3 15 45\n" + "".join(_body(45)))
    assert _read(path).nnz == 45
    assert (_read(path).tocsr() != scipy.io.mmread(path).tocsr()).nnz == 0


def test_a_line_longer_than_a_chunk(tmp_path):
    body = _body(45)
    body[20] = "3 7 " + "0" * 100 + "3\n"
    path = _write(tmp_path / "matrix.mtx", f"{BANNER}3 15 45\n" + "".join(body))
    assert _read(path).tocsr()[2, 6] == 3


def test_pattern_and_real_fields(tmp_path):
    matrix = _matrix("columns")
    pattern = _read(_write(tmp_path / "p.mtx", _mtx_text(matrix, "pattern")))
    assert (pattern.tocsr() != (matrix != 0).astype(float).tocsr()).nnz == 0
    matrix.data = matrix.data / 4  # quarters: exact in float64 and checked as such
    real = _read(_write(tmp_path / "r.mtx", _mtx_text(matrix, "real")))
    assert real.data.dtype == np.float64
    assert (real.tocsr() != matrix.tocsr()).nnz == 0


def test_empty_body(tmp_path):
    path = _write(tmp_path / "matrix.mtx", f"{BANNER}3 15 0\n")
    got = _read(path)
    assert got.shape == (3, 15)
    assert got.nnz == 0


def test_whole_build_with_tiny_chunks(tmp_path):
    matrix = _matrix("columns")
    for gsm in ("GSM1", "GSM2"):
        text = _mtx_text(matrix).replace("\n", f"\n% {gsm}\n", 1)  # not the same bytes twice
        _write(tmp_path / f"{gsm}_matrix.mtx.gz", text)
        (tmp_path / f"{gsm}_barcodes.tsv").write_text("".join(f"{gsm}c{i}\n" for i in range(25)))
        (tmp_path / f"{gsm}_features.tsv").write_text("".join(f"g{i}\tG{i}\tGene Expression\n" for i in range(40)))
    adata = gseio.read_gse_dir(tmp_path)
    assert adata.shape == (50, 40)
    expected = sparse.vstack([matrix.T.tocsr()] * 2).tocsr()
    assert (expected != adata.X).nnz == 0


@pytest.mark.parametrize(
    ("layout", "fast"),
    [
        ("{r} {c} {v}", True),  # what Cell Ranger, STARsolo and scipy write: the fast path
        ("{r}\t{c}\t{v}", False),
        ("  {r}   {c} {v}", False),
        ("{r} {c} {v}  ", False),
        ("{r} {c} {v}.0", False),  # an integer field written as reals: the general parser decides
    ],
)
def test_any_layout_of_whitespace_reads_like_mmread(tmp_path, monkeypatch, layout, fast):
    from gseio.readers import _mtx_arrow

    calls: list[bool] = []
    parse = _mtx_arrow.parse
    monkeypatch.setattr(_mtx_arrow, "parse", lambda *a, **k: calls.append(ok := parse(*a, **k)) or ok)
    matrix = _matrix("shuffled", seed=3)
    entries = zip(matrix.row, matrix.col, matrix.data, strict=True)
    lines = "".join(layout.format(r=r + 1, c=c + 1, v=int(v)) + "\n" for r, c, v in entries)
    path = _write(tmp_path / "matrix.mtx", f"{BANNER}40 25 {matrix.nnz}\n{lines}")
    assert (_read(path).tocsr() != matrix.tocsr()).nnz == 0
    assert calls
    assert all((c is not None) == fast for c in calls)


def test_fast_path_declines_what_it_cannot_check():
    from gseio.readers import _mtx_arrow

    shape = (3, 4)
    got = _mtx_arrow.parse(b"1 2 5\n3 4 7\n", field="integer", shape=shape)
    assert got is not None
    np.testing.assert_array_equal(got[0], [1, 3])
    np.testing.assert_array_equal(got[2], [5, 7])
    outside = [b"0 2 5\n", b"4 2 5\n", b"1 5 5\n"]
    declined = [*outside, b"1 2\n", b"1 2 x\n", b"1  2 5\n", b"1 2 \n", b"1 2 9999999999\n"]
    for text in declined:
        assert _mtx_arrow.parse(text, field="integer", shape=shape) is None, text
    pattern = _mtx_arrow.parse(b"1 2\n3 4\n", field="pattern", shape=shape)
    assert pattern is not None
    assert pattern[2] is None
    real = _mtx_arrow.parse(b"1 2 2.5\n3 4 nan\n", field="real", shape=shape)
    assert real is not None
    assert real[2][0] == 2.5
    assert np.isnan(real[2][1])


# --- a coordinate given twice (a damaged file, or two matrices joined into one) is refused, not summed


def _triplet_folder(folder: Path, text: str, name: str = "matrix.mtx") -> Path:
    """A 10x folder around a 40 x 25 (genes x cells) Matrix Market text."""
    folder.mkdir()
    _write(folder / name, text)
    (folder / "barcodes.tsv").write_text("".join(f"c{i}\n" for i in range(25)))
    (folder / "features.tsv").write_text("".join(f"g{i}\tG{i}\tGene Expression\n" for i in range(40)))
    return folder


@pytest.mark.parametrize("order", ["columns", "rows", "shuffled"])
@pytest.mark.parametrize("layout", ["{r} {c} {v}", "{r}\t{c}\t{v}"], ids=["arrow", "general"])
@pytest.mark.parametrize("name", ["matrix.mtx", "matrix.mtx.gz"])
def test_a_repeated_entry_is_refused_with_both_lines(tmp_path, monkeypatch, order, layout, name):
    from gseio.readers import _mtx_arrow

    calls: list[bool] = []
    parse = _mtx_arrow.parse
    monkeypatch.setattr(_mtx_arrow, "parse", lambda *a, **k: calls.append(ok := parse(*a, **k)) or ok)
    matrix = _matrix(order, seed=5)
    entries = list(zip(matrix.row, matrix.col, matrix.data.astype(int), strict=True))
    first, second = 7, 150  # far apart: many chunks of 64 bytes between them
    entries.insert(second, (entries[first][0], entries[first][1], 9))
    body = "".join(layout.format(r=r + 1, c=c + 1, v=v) + "\n" for r, c, v in entries)
    folder = _triplet_folder(tmp_path / "t", f"{BANNER}% two comment\n% lines\n40 25 {len(entries)}\n{body}", name)
    row, col = entries[first][0] + 1, entries[first][1] + 1
    expected = (rf"entry {second + 1} \(line {second + 5}\) repeats entry {first + 1} \(line {first + 5}\): "
                rf"row {row}, column {col} is given twice")  # fmt: skip
    with pytest.raises(FormatError, match=expected) as info:
        read_10x_mtx(folder)
    assert info.value.path == str(folder / name)
    assert "never write a coordinate twice" in str(info.value)
    assert calls
    assert all((c is not None) == (layout == "{r} {c} {v}") for c in calls)  # the path the chunks took


def test_without_lines_when_blank_lines_come_first(tmp_path):
    matrix = _matrix("columns", seed=2)
    lines = [f"{r + 1} {c + 1} {int(v)}\n" for r, c, v in zip(matrix.row, matrix.col, matrix.data, strict=True)]
    lines.insert(60, lines[3])
    body = "".join(lines[:20]) + "\n\n" + "".join(lines[20:])  # the entries after line 24 are one line further
    folder = _triplet_folder(tmp_path / "t", f"{BANNER}40 25 {len(lines)}\n{body}")
    with pytest.raises(FormatError, match=r"entry 61 repeats entry 4: row \d+, column \d+ is given twice"):
        read_10x_mtx(folder)


def test_entries_out_of_order_without_repeats_are_read(tmp_path):
    """Rows not sorted by feature make the check sort them: no repeat is found where there is none."""
    matrix = _matrix("shuffled", seed=11)
    folder = _triplet_folder(tmp_path / "t", _mtx_text(matrix))
    adata = read_10x_mtx(folder)
    assert (matrix.T.tocsr() != adata.X).nnz == 0


@pytest.mark.parametrize("chunk", [64, 2 << 20], ids=["tiny_chunks", "default_chunks"])
@pytest.mark.parametrize("separator", [" ", "\t"], ids=["arrow", "general"])
@pytest.mark.parametrize("packed", [True, False], ids=["gz", "plain"])
def test_a_real_10x_matrix_with_one_entry_repeated(realdata, tmp_path, monkeypatch, packed, separator, chunk):
    """Cell Ranger 3's matrix (23,866 entries) with entry 3,000 made a copy of entry 11."""
    monkeypatch.setattr(_mtx, "_CHUNK_BYTES", chunk)
    folder = tmp_path / "sample"
    shutil.copytree(realdata / "10x_v3/scanpy/3.0.0/filtered_feature_bc_matrix", folder)
    lines = gzip.decompress((folder / "matrix.mtx.gz").read_bytes()).decode().split("\n")
    body = next(i for i, line in enumerate(lines) if i and not line.startswith("%")) + 1  # after the size line
    first, second = body + 10, body + 2999  # 0-based list positions of two entries
    lines[second] = lines[first]
    lines[body:] = [line.replace(" ", separator) for line in lines[body:]]
    text = "\n".join(lines).encode()
    path = folder / ("matrix.mtx.gz" if packed else "matrix.mtx")
    (folder / "matrix.mtx.gz").unlink()
    path.write_bytes(gzip.compress(text) if packed else text)
    row, col = (int(x) for x in lines[first].split(separator)[:2])
    expected = (rf"entry 3000 \(line {second + 1}\) repeats entry 11 \(line {first + 1}\): "
                rf"row {row}, column {col} is given twice")  # fmt: skip
    with pytest.raises(FormatError, match=expected) as info:
        gseio.read(folder, format="tenx_mtx")
    assert info.value.path == str(path)


def _brute_force_repeat(indptr: np.ndarray, indices: np.ndarray) -> tuple[int, int] | None:
    for row in range(indptr.size - 1):
        seen: set[int] = set()
        repeated = sorted({int(j) for j in indices[indptr[row] : indptr[row + 1]] if j in seen or seen.add(j)})
        if repeated:
            return row, repeated[0]
    return None


def test_first_repeat_finds_what_a_brute_force_finds(monkeypatch):
    from gseio.readers import _repeats

    monkeypatch.setattr(_repeats, "BLOCK_ENTRIES", 7)  # rows are looked at a few entries at a time
    rng = np.random.default_rng(3)
    found = 0
    for _ in range(400):
        n_rows, n_cols = int(rng.integers(1, 12)), int(rng.integers(1, 9))
        per_row = rng.integers(0, 5, size=n_rows)
        indptr = np.concatenate([[0], np.cumsum(per_row)]).astype(np.int64)
        indices = rng.integers(0, n_cols, size=int(indptr[-1])).astype(np.int32)
        if rng.random() < 0.5:  # sorted rows without repeats, as the tools write them (sometimes)
            for r in range(n_rows):
                row = np.unique(indices[indptr[r] : indptr[r + 1]])
                indices[indptr[r] : indptr[r] + row.size] = row
                indices[indptr[r] + row.size : indptr[r + 1]] = row[-1] if row.size else 0
        expected = _brute_force_repeat(indptr, indices)
        found += expected is not None
        before = indices.copy()
        assert _repeats.first_repeat(indptr, indices, n_cols) == expected
        np.testing.assert_array_equal(indices, before)  # nothing is changed
    assert 50 < found < 350  # both outcomes were tried
