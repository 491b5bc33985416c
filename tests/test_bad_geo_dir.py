"""A bad GEO directory: every kind of broken download next to good files.

With ``on_error="raise"`` the first problem in path order stops the build with its typed
error (each problem in turn, as the ones before it are removed); with ``"skip"`` the build
completes, the report lists every bad file with the right reason, and the good cells are all
present and exact.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from scipy import sparse

import gseio
from gseio import errors

GENES = [f"ENSG{i:011d}" for i in range(30)]


def _cell_text(seed: int) -> str:
    values = np.random.default_rng(seed).poisson(2.0, len(GENES))
    return "".join(f"{g}\t{v}\n" for g, v in zip(GENES, values.tolist(), strict=True))


def _triplet(folder: Path, prefix: str, seed: int, *, body_edit=None) -> None:
    rng = np.random.default_rng(seed)
    matrix = sparse.random(len(GENES), 6, density=0.4, random_state=rng, format="coo")
    matrix.data = np.ceil(matrix.data * 9)
    buffer = io.BytesIO()
    scipy.io.mmwrite(buffer, matrix, field="integer")
    text = buffer.getvalue().decode()
    if body_edit is not None:
        text = body_edit(text)
    (folder / f"{prefix}matrix.mtx.gz").write_bytes(gzip.compress(text.encode(), mtime=seed))
    barcodes = "".join(f"{prefix}BC{i}-1\n" for i in range(6))
    (folder / f"{prefix}barcodes.tsv.gz").write_bytes(gzip.compress(barcodes.encode(), mtime=seed))
    features = "".join(f"{g}\tSYM{i}\tGene Expression\n" for i, g in enumerate(GENES))
    (folder / f"{prefix}features.tsv.gz").write_bytes(gzip.compress(features.encode(), mtime=seed))


def _outside_shape(text: str) -> str:
    lines = text.splitlines(keepends=True)
    _, col, value = lines[-1].split()
    lines[-1] = f"{len(GENES) + 5} {col} {value}\n"
    return "".join(lines)


def _wrong_nnz(text: str) -> str:
    lines = text.splitlines(keepends=True)
    size = next(i for i, line in enumerate(lines) if not line.startswith("%"))
    rows, cols, nnz = lines[size].split()
    lines[size] = f"{rows} {cols} {int(nnz) + 3}\n"
    return "".join(lines)


def _good(folder: Path) -> None:
    for i in range(3):
        (folder / f"GSM9{i:02d}_cell{i}.txt.gz").write_bytes(gzip.compress(_cell_text(i).encode(), mtime=0))
    _triplet(folder, "GSM950_", 50)


#: The bad files, in path order, with the error each must raise and a word its reason must hold.
BAD: list[tuple[str, type[errors.InputError], str]] = [
    ("GSM001_empty.txt.gz", errors.EmptyFileError, "empty"),
    ("GSM002_truncated.txt.gz", errors.CorruptFileError, "truncated"),
    ("GSM003_error_page.txt.gz", errors.CorruptFileError, "HTML"),
    ("GSM004_truncated.txt.bz2", errors.CorruptFileError, "truncated"),
    ("GSM005_truncated.txt.xz", errors.CorruptFileError, "truncated"),
    ("GSM007_bomb.txt.bz2", errors.DecompressionBombError, "decompression bomb"),
    ("GSM008_negative.txt", errors.InvalidValueError, "negative"),
    ("GSM009_nan.txt", errors.InvalidValueError, "NaN"),
    ("GSM010_inf.txt", errors.InvalidValueError, "inf"),
    ("GSM011_text.txt", errors.InvalidValueError, "not a number"),
    ("GSM012_ragged_table.tsv", errors.FormatError, "line 4"),
    ("GSM013_header_width_table.tsv", errors.FormatError, "header"),
    ("GSM014_repeated_cells_table.tsv", errors.FormatError, "c2"),
    ("GSM015_outside_matrix.mtx.gz", errors.FormatError, "outside the shape"),
    ("GSM016_short_matrix.mtx.gz", errors.FormatError, "fewer entries than its size line declares"),
    ("GSM999_copy_of_cell0.txt.gz", errors.DuplicateInputError, "same bytes as GSM900_cell0.txt.gz"),
]
IGNORED = {"GSM006_two_tables.zip": "archive", "GSM017_nested.tar.gz": "archive"}


def _bad(folder: Path) -> None:
    cell = _cell_text(7).encode()
    (folder / "GSM001_empty.txt.gz").write_bytes(b"")
    (folder / "GSM002_truncated.txt.gz").write_bytes(gzip.compress(cell)[:-20])
    (folder / "GSM003_error_page.txt.gz").write_bytes(
        b"<!DOCTYPE html>\n<html><body>404 Not Found</body></html>\n"
    )
    (folder / "GSM004_truncated.txt.bz2").write_bytes(bz2.compress(cell)[:-20])
    (folder / "GSM005_truncated.txt.xz").write_bytes(lzma.compress(cell)[:-20])
    with zipfile.ZipFile(folder / "GSM006_two_tables.zip", "w") as zf:
        zf.writestr("a.txt", cell)
        zf.writestr("b.txt", cell)
    (folder / "GSM007_bomb.txt.bz2").write_bytes(bz2.compress(b"ENSG00000000001\t0\n" + b"0" * (8 << 20)))
    lines = _cell_text(8).splitlines(keepends=True)
    for name, bad in (("negative", "-4"), ("nan", "NaN"), ("inf", "inf"), ("text", "many")):
        edited = [*lines[:5], f"{GENES[5]}\t{bad}\n", *lines[6:]]
        (folder / f"GSM0{8 + ['negative', 'nan', 'inf', 'text'].index(name):02d}_{name}.txt").write_text(
            "".join(edited)
        )
    table = ["gene\tc1\tc2\tc3\n", *(f"{g}\t1\t2\t3\n" for g in GENES)]
    ragged = [*table[:3], f"{GENES[2]}\t1\t2\n", *table[4:]]
    (folder / "GSM012_ragged_table.tsv").write_text("".join(ragged))
    (folder / "GSM013_header_width_table.tsv").write_text("".join(["gene\tc1\tc2\tc3\tc4\tc5\n", *table[1:]]))
    (folder / "GSM014_repeated_cells_table.tsv").write_text("".join(["gene\tc1\tc2\tc2\n", *table[1:]]))
    _triplet(folder, "GSM015_outside_", 15, body_edit=_outside_shape)
    _triplet(folder, "GSM016_short_", 16, body_edit=_wrong_nnz)
    (folder / "GSM999_copy_of_cell0.txt.gz").write_bytes((folder / "GSM900_cell0.txt.gz").read_bytes())
    with tarfile.open(folder / "GSM017_nested.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo("inner.txt")
        info.size = len(cell)
        tar.addfile(info, io.BytesIO(cell))


@pytest.fixture(autouse=True)
def small_floor(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse bombs from 1 MiB on (the real floor is 64 MiB), to keep the test fast."""
    from gseio import _limits

    monkeypatch.setattr(_limits, "EXPANSION_FLOOR", 1 << 20)


@pytest.fixture
def bad_geo_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "GSE1_RAW"
    folder.mkdir()
    _good(folder)
    _bad(folder)
    return folder


@pytest.fixture
def good_only(tmp_path: Path) -> Path:
    folder = tmp_path / "good"
    folder.mkdir()
    _good(folder)
    return folder


def test_raise_stops_at_each_problem_in_path_order(bad_geo_dir):
    for name, error, word in BAD:
        with pytest.raises(errors.InputError) as info:
            gseio.read_gse_dir(bad_geo_dir, max_expansion=50)
        assert type(info.value) is error, (name, info.value)
        assert name in str(info.value), (name, info.value)
        assert word.lower() in str(info.value).lower(), (name, info.value)
        for path in bad_geo_dir.glob(name.replace("matrix.mtx.gz", "*")):  # a triplet goes as a whole
            path.unlink()
        if not name.endswith(".mtx.gz"):
            (bad_geo_dir / name).unlink(missing_ok=True)
    adata = gseio.read_gse_dir(bad_geo_dir)  # only good files (and the ignored archive) left
    assert adata.n_obs == 3 + 6


def test_skip_completes_reports_every_bad_file_and_keeps_good_cells_exact(bad_geo_dir, good_only):
    adata = gseio.read_gse_dir(bad_geo_dir, on_error="skip", max_expansion=50)
    expected = gseio.read_gse_dir(good_only)
    assert adata.obs_names.tolist() == expected.obs_names.tolist()
    assert adata.var_names.tolist() == expected.var_names.tolist()
    assert (adata.X != expected.X).nnz == 0
    report = gseio.build_report(adata)
    files = {f["path"]: f for f in report["files"]}
    for name, error, word in BAD:
        entry = files[name]
        assert entry["status"] == "skipped", name
        assert entry["reason"].startswith(f"{error.__name__}: "), (name, entry["reason"])
        assert word.lower() in entry["reason"].lower(), (name, entry["reason"])
    for name, word in IGNORED.items():
        assert files[name]["status"] == "ignored"
        assert word in files[name]["reason"]
    read = {f["path"] for f in report["files"] if f["status"] == "read"}
    assert {p.name for p in good_only.iterdir()} == read
    assert report["totals"]["cells"] == adata.n_obs
    assert report["totals"]["total_counts"] == float(expected.X.sum())
