from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest

import gseio
from gseio.errors import InputError


def _cells(folder: Path, n: int = 6) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        genes = [f"G{j}" for j in range(i, i + 20)]  # gene lists differ across files
        text = "".join(f"{g}\t{(i * 7 + k) % 5}\n" for k, g in enumerate(genes))
        (folder / f"GSM{100 + i}_cell{i}.txt.gz").write_bytes(gzip.compress(text.encode()))
    (folder / "filelist.txt").write_text("#Archive/File\n")


def _tar(folder: Path, tar_path: Path) -> Path:
    with tarfile.open(tar_path, "w") as tar:  # GEO's RAW.tar: uncompressed, files at the top
        for path in sorted(folder.iterdir()):
            tar.add(path, arcname=path.name)
    return tar_path


def _equal(a, b) -> None:
    assert a.obs_names.tolist() == b.obs_names.tolist()
    assert a.var_names.tolist() == b.var_names.tolist()
    assert (a.X != b.X).nnz == 0
    assert a.obs["sample"].tolist() == b.obs["sample"].tolist()
    assert a.obs["source_file"].tolist() == b.obs["source_file"].tolist()


def test_raw_tar_reads_in_place_like_the_extracted_folder(tmp_path):
    _cells(tmp_path / "GSE1_RAW")
    tar = _tar(tmp_path / "GSE1_RAW", tmp_path / "GSE1_RAW.tar")
    from_folder = gseio.read_gse_dir(tmp_path / "GSE1_RAW")
    from_tar = gseio.read_gse_dir(tar)
    _equal(from_tar, from_folder)
    assert from_tar.uns["gseio"]["ignored_files"].tolist() == ["filelist.txt"]
    assert from_tar.uns["gseio"]["input"] == str(tar.resolve())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["GSE1_RAW", "GSE1_RAW.tar"]  # nothing extracted


def test_hostile_tar_members_are_never_followed_and_are_reported(tmp_path):
    _cells(tmp_path / "src", n=2)
    tar_path = _tar(tmp_path / "src", tmp_path / "evil.tar")
    with tarfile.open(tar_path, "a") as tar:
        for name in ("../escape.txt", "/abs/path.txt"):
            data = b"G1\t5\n"
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("link.txt")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)
    adata = gseio.read_gse_dir(tar_path)
    assert adata.n_obs == 2
    reasons = dict(zip(adata.uns["gseio"]["ignored_files"], adata.uns["gseio"]["ignored_reasons"], strict=True))
    assert reasons["../escape.txt"].startswith("unsafe member path")
    assert reasons["/abs/path.txt"].startswith("unsafe member path")
    assert reasons["link.txt"].startswith("not a regular file")
    assert not (tmp_path / "escape.txt").exists()


def test_errors_name_the_tar_member(tmp_path):
    _cells(tmp_path / "src", n=2)
    (tmp_path / "src" / "GSM999_bad.txt").write_text("G1\t1\nG2\t-3\n")
    tar = _tar(tmp_path / "src", tmp_path / "bad.tar")
    with pytest.raises(gseio.errors.InvalidValueError, match=r"bad\.tar:GSM999_bad\.txt"):
        gseio.read_gse_dir(tar)
    skipped = gseio.read_gse_dir(tar, on_error="skip")
    assert skipped.uns["gseio"]["skipped_files"].tolist() == ["GSM999_bad.txt"]


def test_compressed_tar_is_refused_with_advice(tmp_path):
    _cells(tmp_path / "src", n=1)
    with tarfile.open(tmp_path / "x.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "src", arcname="src")
    with pytest.raises(InputError, match="compressed tar cannot be read in place"):
        gseio.read_gse_dir(tmp_path / "x.tar.gz")


def test_mixed_counts_and_normalised_values_are_refused(tmp_path, monkeypatch):
    import gseio.readers.cell_table as cell_table

    _cells(tmp_path / "d", n=4)
    original = cell_table.read_unit

    def half_normalised(unit, options):  # a reader that says its values are TPM for some files
        pieces = original(unit, options)
        if unit.name.endswith(("cell0.txt.gz", "cell1.txt.gz")):
            for piece in pieces:
                piece.values = "normalized"
        return pieces

    spec = gseio._registry.get_format("cell_table")
    monkeypatch.setitem(gseio._registry._FORMATS, "cell_table", type(spec)(
        name=spec.name, description=spec.description, read_unit=half_normalised, sniff=spec.sniff))  # fmt: skip
    with pytest.raises(gseio.errors.MixedInputError, match="raw counts with already-normalised values"):
        gseio.read_gse_dir(tmp_path / "d")
    assert gseio.read_gse_dir(tmp_path / "d", allow_mixed=True).n_obs == 4


def test_unknown_reader_option_is_a_type_error(tmp_path):
    _cells(tmp_path / "d", n=1)
    with pytest.raises(TypeError, match="unknown reader option"):
        gseio.read_gse_dir(tmp_path / "d", orientaton="auto")
    assert np.isfinite(gseio.read_gse_dir(tmp_path / "d", orientation="auto").X.data).all()


def test_single_cell_units_next_to_bulk_quantifications_are_refused(realdata, tmp_path):
    import shutil

    shutil.copytree(realdata / "10x_v3" / "scanpy" / "3.0.0" / "filtered_feature_bc_matrix", tmp_path / "GSM1_10x")
    shutil.copyfile(realdata / "featurecounts" / "GenomicsAotearoa" / "yeast_counts_all_chr.txt",
                    tmp_path / "bulk_counts.txt")  # fmt: skip
    with pytest.raises(gseio.errors.MixedInputError, match=r"featurecounts \(bulk\).*tenx_mtx \(single_cell\)"):
        gseio.read_gse_dir(tmp_path)
    both = gseio.read_gse_dir(tmp_path, allow_mixed=True, gene_ids="exact")  # human IDs, yeast names
    assert both.n_obs == 1107 + 6
    assert set(both.uns["gseio"]["formats"]) == {"tenx_mtx", "featurecounts"}
    only_10x = gseio.read_gse_dir(tmp_path, pattern="GSM1_10x/*")
    assert only_10x.n_obs == 1107
