"""Nothing outside the input is ever read: hostile HDF5 files, and files swapped after listing.

An HDF5 file can keep a dataset's bytes in another file (external storage), take them
from another HDF5 file (a virtual dataset) or link to one (an external link). Each is
refused, for every HDF5 format, plain, gzipped, in a RAW.tar and gzipped in a RAW.tar,
and the outside file's values never reach an output. A file swapped for a symbolic link
(or another file) after the input was listed is refused, not followed.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from scipy import io as scipy_io

import gseio
from gseio import _open
from gseio.cli import main
from gseio.errors import CorruptFileError, InputChangedError, UnsafeInputError

#: The outside file's values: far above any count the good files hold, so that one in an output shows.
SECRET = 7001.0
GENES = [b"G1", b"G2", b"G3"]


def _secret(n: int) -> np.ndarray:
    return SECRET + np.arange(n, dtype=np.float64)


def _put(f: h5py.File, name: str, shape: tuple[int, ...], how: str, outside: Path) -> None:
    """The count dataset: inline counts 1..n, or the outside values by external storage, link or VDS."""
    n = int(np.prod(shape))
    if how == "inline":
        f.create_dataset(name, data=(1 + np.arange(n, dtype=np.float64)).reshape(shape))
        return
    outside.mkdir(exist_ok=True)
    if how == "external":
        raw = outside / f"secret_{n}.bin"
        _secret(n).tofile(raw)
        f.create_dataset(name, shape=shape, dtype="f8", external=[(str(raw), 0, 8 * n)])
        return
    other = outside / f"secret_{n}.h5"
    with h5py.File(other, "a") as g:
        if "data" not in g:
            g["data"] = _secret(n).reshape(shape)
    if how == "link":
        f[name] = h5py.ExternalLink(str(other), "/data")
    else:
        layout = h5py.VirtualLayout(shape=shape, dtype="f8")
        layout[...] = h5py.VirtualSource(str(other), "data", shape=shape)
        f.create_virtual_dataset(name, layout)


def _cells(tag: str) -> np.ndarray:
    return np.array([f"{tag}_c1".encode(), f"{tag}_c2".encode()])


def _loom(path: Path, how: str, outside: Path, tag: str) -> None:
    with h5py.File(path, "w") as f:
        _put(f, "matrix", (3, 2), how, outside)
        f["row_attrs/Gene"] = np.array(GENES)
        f["col_attrs/CellID"] = _cells(tag)


def _h5ad(path: Path, how: str, outside: Path, tag: str) -> None:
    with h5py.File(path, "w") as f:
        _put(f, "X", (2, 3), how, outside)
        for name, index in (("obs", _cells(tag)), ("var", np.array(GENES))):
            group = f.create_group(name)
            group.attrs["encoding-type"] = "dataframe"
            group.attrs["_index"] = "_index"
            group["_index"] = index


def _tenx_h5(path: Path, how: str, outside: Path, tag: str) -> None:
    with h5py.File(path, "w") as f:
        matrix = f.create_group("matrix")
        matrix["barcodes"] = _cells(tag)
        _put(f, "matrix/data", (6,), how, outside)
        matrix["indices"] = np.array([0, 1, 2, 0, 1, 2], dtype=np.int64)
        matrix["indptr"] = np.array([0, 3, 6], dtype=np.int64)
        matrix["shape"] = np.array([3, 2], dtype=np.int32)
        features = matrix.create_group("features")
        features["id"] = features["name"] = np.array(GENES)
        features["feature_type"] = np.array([b"Gene Expression"] * 3)
        features["genome"] = np.array([b"hg"] * 3)


def _kallisto(path: Path, how: str, outside: Path, tag: str) -> None:
    with h5py.File(path, "w") as f:
        _put(f, "est_counts", (3,), how, outside)
        f["aux/ids"] = np.array([b"T1", b"T2", b"T3"])
        f["aux/lengths"] = f["aux/eff_lengths"] = np.full(3, 1000.0)


#: format -> (writer, file suffix, the count dataset's path, cells per good file, its counts' total)
FORMATS: dict[str, tuple[Callable[..., None], str, str, int, float]] = {
    "loom": (_loom, ".loom", "/matrix", 2, 21.0),
    "h5ad": (_h5ad, ".h5ad", "/X", 2, 21.0),
    "tenx_h5": (_tenx_h5, ".h5", "/matrix/data", 2, 21.0),
    "kallisto": (_kallisto, ".h5", "/est_counts", 1, 6.0),
}


def _pack(folder: Path, container: str) -> Path:
    """The input as a folder (files plain or gzipped) or a RAW.tar of them (members plain or gzipped)."""
    if container in ("gzip", "tar_gzip"):
        for path in list(folder.iterdir()):
            path.with_name(path.name + ".gz").write_bytes(gzip.compress(path.read_bytes(), mtime=0))
            path.unlink()
    if container.startswith("tar"):
        tar_path = folder.parent / "GSE1_RAW.tar"
        with tarfile.open(tar_path, "w") as tar:
            for path in sorted(folder.iterdir()):
                tar.add(path, arcname=path.name)
        shutil.rmtree(folder)
        return tar_path
    return folder


def _hostile_input(tmp_path: Path, fmt: str, how: str, container: str) -> tuple[Path, str]:
    """A good file and a hostile one of ``fmt``; returns the input and the hostile file's name as listed."""
    writer, suffix, _, _, _ = FORMATS[fmt]
    folder = tmp_path / "GSE1_RAW"
    folder.mkdir()
    writer(folder / f"GSM1_good{suffix}", "inline", tmp_path / "outside", "good")
    writer(folder / f"GSM2_bad{suffix}", how, tmp_path / "outside", "bad")
    bad = f"GSM2_bad{suffix}" + (".gz" if "gzip" in container else "")
    return _pack(folder, container), bad


def _assert_no_outside_values(out: Path, n_cells: int, total: float) -> None:
    """Every output holds the good file's cells and counts only: no outside value, in any file."""
    mtx = scipy_io.mmread(out / "expressionMatrix_rawCounts.mtx")  # cells x genes
    assert mtx.shape[0] == n_cells
    assert mtx.max() < SECRET
    assert mtx.sum() == total
    h5ad = next(out.glob("*.h5ad"))
    with h5py.File(h5ad, "r") as f:
        data = f["X/data"][()] if isinstance(f["X"], h5py.Group) else f["X"][()]
    assert data.max() < SECRET
    assert float(data.sum()) == total
    for path in out.iterdir():
        raw = path.read_bytes()
        for value in (_secret(6), _secret(6).astype(np.float32)):
            assert value[:2].tobytes() not in raw, path.name
        assert b"bad_c" not in raw, path.name  # no cell of the hostile file either


@pytest.mark.parametrize("container", ["plain", "gzip", "tar", "tar_gzip"])
@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_external_storage_is_refused_and_never_reaches_an_output(tmp_path: Path, fmt: str, container: str) -> None:
    source, bad = _hostile_input(tmp_path, fmt, "external", container)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["build", str(source), "-o", str(out), "--on-error", "skip", "-q"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "build_report.json").read_text())
    status = {f["path"]: (f["status"], f["reason"]) for f in report["files"]}
    assert status[bad][0] == "skipped"
    dataset = FORMATS[fmt][2]
    assert status[bad][1].startswith(f"UnsafeInputError: dataset {dataset} keeps its data in the outside file")
    assert "secret_" in status[bad][1]
    _, _, _, n_cells, total = FORMATS[fmt]
    assert report["totals"]["cells"] == n_cells
    _assert_no_outside_values(out, n_cells, total)


@pytest.mark.parametrize("how", ["link", "virtual"])
@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_external_links_and_virtual_datasets_are_refused(tmp_path: Path, fmt: str, how: str) -> None:
    source, bad = _hostile_input(tmp_path, fmt, how, "plain")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["build", str(source), "-o", str(out), "--on-error", "skip", "-q"])
    assert result.exit_code == 0, result.output
    reason = {f["path"]: f["reason"] for f in json.loads((out / "build_report.json").read_text())["files"]}[bad]
    dataset = FORMATS[fmt][2]
    what = "is an external link to /data in the file" if how == "link" else "is a virtual dataset whose data come"
    assert reason.startswith(f"UnsafeInputError: {'dataset ' if how == 'virtual' else ''}{dataset} {what}")
    _, _, _, n_cells, total = FORMATS[fmt]
    _assert_no_outside_values(out, n_cells, total)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_reading_a_hostile_file_alone_names_it_and_its_dataset(tmp_path: Path, fmt: str) -> None:
    writer, suffix, dataset, _, _ = FORMATS[fmt]
    bad = tmp_path / f"bad{suffix}"
    writer(bad, "external", tmp_path / "outside", "bad")
    with pytest.raises(UnsafeInputError, match=rf"dataset {dataset} keeps its data in the outside file") as e:
        gseio.read(bad)
    assert e.value.path == str(bad)
    with pytest.raises(UnsafeInputError):  # the format forced: the reader's opening refuses it too
        gseio.read(bad, format=fmt)


def test_the_check_needs_no_outside_byte(tmp_path: Path) -> None:
    """The refusal comes from the file's own headers: an outside file that does not exist changes nothing."""
    path = tmp_path / "deep.loom"
    with h5py.File(path, "w") as f:
        f.create_dataset("a/b/c/d", shape=(4,), dtype="f8", external=[(str(tmp_path / "nowhere.bin"), 0, 32)])
        f["a/b/loop"] = f["a"]  # a hard-link cycle: visited once
        f["soft"] = h5py.SoftLink("/a/b/c/d")
    with pytest.raises(UnsafeInputError, match=r"dataset /a/b/c/d keeps its data in .*nowhere\.bin"):
        _open.open_hdf5(path)


def test_self_contained_files_with_links_and_cycles_open(tmp_path: Path) -> None:
    path = tmp_path / "fine.h5"
    with h5py.File(path, "w") as f:
        f["a/b/data"] = np.arange(3.0)
        f["a/b/loop"] = f["a"]
        f["a/alias"] = f["a/b/data"]
        f["soft"] = h5py.SoftLink("/a/b/data")
        f["dangling"] = h5py.SoftLink("/nowhere")
    with _open.open_hdf5(path) as f:
        assert f["soft"][()].tolist() == [0.0, 1.0, 2.0]


def test_a_damaged_object_header_fails_the_check_as_a_damaged_file(realdata: Path, tmp_path: Path) -> None:
    """A part the check cannot visit is not read either: a typed error (h5py's visit would raise SystemError)."""
    data = (realdata / "h5ad" / "htseq" / "bamfile_no_qualities.h5ad").read_bytes()
    path = tmp_path / "damaged.h5ad"
    path.write_bytes(data[:1177] + b"\x00" + data[1177:])  # found by tests/test_fuzz.py
    with pytest.raises(CorruptFileError, match=r"damaged\.h5ad: cannot be read as HDF5 .*bad object header"):
        _open.open_hdf5(path)


def test_every_real_hdf5_file_passes_the_check(realdata: Path) -> None:
    paths = sorted(p for p in realdata.rglob("*") if p.suffix in (".h5", ".h5ad", ".loom") and p.is_file())
    assert len(paths) >= 10
    for path in paths:
        with _open.open_hdf5(path) as f:
            assert len(f.keys()) > 0, path


def test_a_gzipped_10x_h5_reads_like_the_plain_file(realdata: Path, tmp_path: Path) -> None:
    plain = realdata / "10x_v3" / "scanpy" / "3.0.0" / "filtered_feature_bc_matrix.h5"
    packed = tmp_path / "filtered_feature_bc_matrix.h5.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    with h5py.File(plain, "r") as f:
        n_cells, total = int(f["matrix/shape"][1]), float(f["matrix/data"][()].sum())
    adata = gseio.read(packed)
    assert adata.n_obs == n_cells
    assert float(adata.X.sum()) == pytest.approx(total)


# -- files swapped after listing -------------------------------------------------------------------


def _table(base: float) -> bytes:
    return "".join(f"GENE{j}\t{base + j:g}\n" for j in range(40)).encode()


GOOD_TOTAL = sum(1 + j for j in range(40))


@pytest.fixture
def swap_input(tmp_path: Path) -> tuple[Path, Path]:
    """An input of two per-cell files, and an outside folder holding a file of the outside values."""
    folder = tmp_path / "GSE2_RAW"
    (folder / "sub").mkdir(parents=True)
    (folder / "GSM1_a.txt").write_bytes(_table(1))
    (folder / "sub" / "GSM2_b.txt").write_bytes(_table(2))
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "secret.txt").write_bytes(_table(SECRET))
    (outside / "sub" / "GSM2_b.txt").write_bytes(_table(SECRET))
    return folder, outside


def _to_link(folder: Path, outside: Path) -> None:
    (folder / "sub" / "GSM2_b.txt").unlink()
    (folder / "sub" / "GSM2_b.txt").symlink_to(outside / "secret.txt")


def _to_other_file(folder: Path, outside: Path) -> None:
    shutil.copy(outside / "secret.txt", folder / "new.tmp")
    os.replace(folder / "new.tmp", folder / "sub" / "GSM2_b.txt")


def _folder_to_link(folder: Path, outside: Path) -> None:
    shutil.rmtree(folder / "sub")
    (folder / "sub").symlink_to(outside / "sub")


def _to_fifo(folder: Path, outside: Path) -> None:
    (folder / "sub" / "GSM2_b.txt").unlink()
    os.mkfifo(folder / "sub" / "GSM2_b.txt")  # opened as a file, it would block the build for ever


SWAPS = {"link": _to_link, "other_file": _to_other_file, "folder_link": _folder_to_link, "fifo": _to_fifo}


@pytest.mark.parametrize("when", ["before detection", "before reading"])
@pytest.mark.parametrize("swap", sorted(SWAPS))
def test_a_file_swapped_after_listing_is_refused(
    swap_input: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, swap: str, when: str
) -> None:
    from gseio import assemble

    folder, outside = swap_input
    name = "list_sources" if when == "before detection" else "assemble_units"
    original = getattr(assemble, name)

    def swapped(*args, **kwargs):
        if name == "list_sources":
            found = original(*args, **kwargs)
            SWAPS[swap](folder, outside)
            return found
        SWAPS[swap](folder, outside)
        return original(*args, **kwargs)

    monkeypatch.setattr(assemble, name, swapped)
    adata = gseio.read_gse_dir(folder, on_error="skip")
    assert adata.obs["source_file"].tolist() == ["GSM1_a.txt"]
    assert float(adata.X.sum()) == GOOD_TOTAL  # no outside value
    prov = adata.uns["gseio"]
    reasons = dict(zip(prov["skipped_files"], prov["skipped_reasons"], strict=True))
    assert reasons["sub/GSM2_b.txt"].startswith("InputChangedError: changed while the build ran: it was replaced")


def test_an_in_tree_link_pointed_elsewhere_after_listing_is_refused(
    swap_input: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from gseio import assemble

    folder, outside = swap_input
    (folder / ".store").mkdir()  # a hidden folder is not read: its file is read through the link only
    (folder / "sub" / "GSM2_b.txt").rename(folder / ".store" / "GSM2_b.txt")
    link = folder / "sub" / "GSM2_b.txt"
    link.symlink_to(folder / ".store" / "GSM2_b.txt")  # an in-tree link: followed
    original = assemble.assemble_units

    def swapped(units, **kwargs):
        link.unlink()
        link.symlink_to(outside / "secret.txt")
        return original(units, **kwargs)

    monkeypatch.setattr(assemble, "assemble_units", swapped)
    adata = gseio.read_gse_dir(folder, on_error="skip")
    assert adata.obs["source_file"].tolist() == ["GSM1_a.txt"]
    assert float(adata.X.sum()) == GOOD_TOTAL
    reasons = dict(zip(adata.uns["gseio"]["skipped_files"], adata.uns["gseio"]["skipped_reasons"], strict=True))
    assert reasons["sub/GSM2_b.txt"].startswith("InputChangedError: changed while the build ran: it was replaced")
    monkeypatch.setattr(assemble, "assemble_units", original)
    link.unlink()
    link.symlink_to(folder / ".store" / "GSM2_b.txt")
    assert sorted(gseio.read_gse_dir(folder).obs["source_file"]) == ["GSM1_a.txt", "sub/GSM2_b.txt"]


def test_a_tar_swapped_after_listing_is_refused(
    swap_input: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from gseio import assemble

    _folder, outside = swap_input
    tar_path, other = tmp_path / "GSE2_RAW.tar", outside / "other.tar"
    for path, data in ((tar_path, _table(1)), (other, _table(SECRET))):
        with tarfile.open(path, "w") as tar:
            (tmp_path / "GSM1_a.txt").write_bytes(data)
            tar.add(tmp_path / "GSM1_a.txt", arcname="GSM1_a.txt")
    original = assemble.assemble_units

    def swapped(units, **kwargs):
        tar_path.unlink()
        tar_path.symlink_to(other)  # same member at the same offset: only the identity tells them apart
        return original(units, **kwargs)

    monkeypatch.setattr(assemble, "assemble_units", swapped)
    with pytest.raises(InputChangedError, match=r"GSE2_RAW\.tar:GSM1_a\.txt: changed while the build ran"):
        gseio.read_gse_dir(tar_path)


def test_the_cli_names_a_swapped_file_and_exits_1(
    swap_input: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from gseio import assemble

    folder, outside = swap_input
    original = assemble.assemble_units

    def swapped(units, **kwargs):
        _to_link(folder, outside)
        return original(units, **kwargs)

    monkeypatch.setattr(assemble, "assemble_units", swapped)
    result = CliRunner().invoke(main, ["build", str(folder), "-o", str(tmp_path / "out"), "-q"])
    assert result.exit_code == 1
    assert "GSM2_b.txt: changed while the build ran: it was replaced by a symbolic link" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out" / "build_report.json").exists()
