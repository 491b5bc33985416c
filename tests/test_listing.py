"""What the listing of an input folder reads, and what it sets aside with a reason (gseio._listing).

Hidden folders, gseio's own builds and working folders, the build's output folder inside
its input, symbolic-link loops and broken links, in-tree aliases, folders that cannot be
read, and file names that are not UTF-8: none is read silently, none crashes the build.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
from pathlib import Path

import anndata
import pytest
from click.testing import CliRunner

import gseio
from gseio.cli import main
from gseio.errors import DuplicateInputError, GseioWarning, InputError


def _table(i: int) -> bytes:
    """A per-cell count table, distinct for each ``i``: gene ``GENE<j>`` has count ``i + j``."""
    return "".join(f"GENE{j}\t{i + j}\n" for j in range(40)).encode()


def _total(*cells: int) -> float:
    return float(sum(i + j for i in cells for j in range(40)))


def _folder(root: Path, cells: dict[str, int]) -> Path:
    for rel, i in cells.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(_table(i))
    return root


def _reasons(adata, kind: str = "ignored") -> dict[str, str]:
    prov = adata.uns["gseio"]
    return dict(zip(prov[f"{kind}_files"], prov[f"{kind}_reasons"], strict=True))


# -- hidden folders and links -----------------------------------------------------------------------


def test_hidden_folders_are_reported_not_read(tmp_path: Path) -> None:
    cells = {"GSM1_a.txt": 1, ".snapshot/GSM2_b.txt": 2, ".hidden.txt": 3, ".gseio-cache/x.txt": 4,
             "sub/.git/GSM5.txt": 5, "out.gseio-lock": 6}  # fmt: skip
    root = _folder(tmp_path / "in", cells)
    adata = gseio.read_gse_dir(root)
    assert adata.obs["source_file"].tolist() == ["GSM1_a.txt"]
    assert float(adata.X.sum()) == _total(1)
    assert _reasons(adata) == {
        ".snapshot": "hidden folder: not read",
        ".hidden.txt": "hidden file",
        ".gseio-cache": "gseio's working folder (the unit cache, or the staging or lock of a build): never read "
        "as input",
        "out.gseio-lock": "gseio's working file (the unit cache, or the staging or lock of a build): never read "
        "as input",
        "sub/.git": "hidden folder: not read",
    }


def test_symlink_loops_and_broken_links_are_set_aside(tmp_path: Path) -> None:
    root = _folder(tmp_path / "in", {"GSM1_a.txt": 1})
    (root / "loop_a.txt").symlink_to("loop_b.txt")
    (root / "loop_b.txt").symlink_to("loop_a.txt")
    (root / "self.txt").symlink_to("self.txt")
    (root / "broken.txt").symlink_to("nowhere.txt")
    adata = gseio.read_gse_dir(root)
    assert adata.obs["source_file"].tolist() == ["GSM1_a.txt"]
    reasons = _reasons(adata)
    for name in ("loop_a.txt", "loop_b.txt", "self.txt"):
        assert reasons[name] == "a symbolic link loop: not followed"
    assert reasons["broken.txt"] == "a broken symbolic link (its target does not exist): not followed"
    result = CliRunner().invoke(main, ["build", str(root), "-o", str(tmp_path / "out"), "-q"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("alias", ["GSM0_alias.txt", "GSM9_alias.txt"])  # sorts before, or after, the file
def test_an_in_tree_alias_is_set_aside_and_the_real_file_read(tmp_path: Path, alias: str) -> None:
    root = _folder(tmp_path / "in", {"GSM5_real.txt": 5, "GSM6_other.txt": 6})
    (root / alias).symlink_to("GSM5_real.txt")
    adata = gseio.read_gse_dir(root)  # no DuplicateInputError: the alias is not read at all
    assert sorted(adata.obs["source_file"]) == ["GSM5_real.txt", "GSM6_other.txt"]
    assert float(adata.X.sum()) == _total(5, 6)
    assert _reasons(adata)[alias] == (
        "symbolic link to GSM5_real.txt: an alias of a file read under that name, not read twice"
    )


def test_two_links_to_a_file_not_listed_read_it_once(tmp_path: Path) -> None:
    root = _folder(tmp_path / "in", {".store/cell.txt": 3, "GSM1_a.txt": 1})
    (root / "GSM3_b.txt").symlink_to(".store/cell.txt")
    (root / "GSM3_c.txt").symlink_to(".store/cell.txt")
    adata = gseio.read_gse_dir(root)
    assert sorted(adata.obs["source_file"]) == ["GSM1_a.txt", "GSM3_b.txt"]
    assert _reasons(adata)["GSM3_c.txt"].startswith("symbolic link to GSM3_b.txt: an alias")


def test_links_leading_out_or_into_a_build_are_not_followed(tmp_path: Path) -> None:
    root = _folder(tmp_path / "in", {"GSM1_a.txt": 1, "old_build/GSM2.txt": 2})
    (root / "old_build" / "build_report.json").write_text(json.dumps({"report_version": 1, "files": []}))
    (tmp_path / "outside.txt").write_bytes(_table(7))
    (root / "GSM7_out.txt").symlink_to(tmp_path / "outside.txt")
    (root / "GSM2_in.txt").symlink_to(root / "old_build" / "GSM2.txt")
    adata = gseio.read_gse_dir(root)
    assert adata.obs["source_file"].tolist() == ["GSM1_a.txt"]
    reasons = _reasons(adata)
    assert reasons["GSM7_out.txt"] == "symbolic link leading out of the input folder"
    assert reasons["GSM2_in.txt"] == "symbolic link into a folder that holds a gseio build: not followed"


def test_a_folder_that_cannot_be_read_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _folder(tmp_path / "in", {"GSM1_a.txt": 1, "locked/GSM2_b.txt": 2})
    real_scandir = os.scandir

    def scandir(path=".", *args):  # as root, permissions cannot deny a read: refuse this one folder
        if Path(path) == root / "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path, *args)

    monkeypatch.setattr(os, "scandir", scandir)
    adata = gseio.read_gse_dir(root)
    assert adata.obs["source_file"].tolist() == ["GSM1_a.txt"]
    assert _reasons(adata)["locked"] == "folder cannot be read (Permission denied): its files are not read"


# -- file names that are not UTF-8 ------------------------------------------------------------------------


def test_a_name_that_is_not_utf8_is_read_and_shown_with_escapes(tmp_path: Path) -> None:
    root = _folder(tmp_path / "in", {"GSM1_a.txt": 1})
    (root / os.fsdecode(b"GSM2_caf\xe9.txt")).write_bytes(_table(2))
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["build", str(root), "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    shown = "GSM2_caf\\xe9.txt"  # the byte 0xE9 spelled \xe9, everywhere
    adata = anndata.read_h5ad(next(out.glob("*.h5ad")))
    assert sorted(adata.obs["source_file"]) == ["GSM1_a.txt", shown]
    assert float(adata.X.sum()) == _total(1, 2)  # the file itself was opened by its real bytes
    report = json.loads((out / "build_report.json").read_text(encoding="utf-8"))
    assert shown in {f["path"] for f in report["files"]}
    assert "caf\\xe9" in (out / "cellID_rawCounts.tsv").read_text(encoding="utf-8").splitlines()  # its cell


def test_a_bad_file_whose_name_is_not_utf8_is_named_without_a_traceback(tmp_path: Path) -> None:
    root = _folder(tmp_path / "in", {"GSM1_a.txt": 1})
    (root / os.fsdecode(b"GSM2_\xff.txt")).write_bytes(b"GENE1\t-3\n" * 40)
    result = CliRunner().invoke(main, ["build", str(root), "-o", str(tmp_path / "out"), "-q"])
    assert result.exit_code == 1
    assert "GSM2_\\xff.txt" in result.output
    assert "Traceback" not in result.output
    skipped = gseio.read_gse_dir(root, on_error="skip")
    assert list(_reasons(skipped, "skipped")) == ["GSM2_\\xff.txt"]


def test_a_tar_member_whose_name_is_not_utf8_is_shown_with_escapes(tmp_path: Path) -> None:
    (tmp_path / "cell.txt").write_bytes(_table(4))
    tar_path = tmp_path / "GSE9_RAW.tar"
    with tarfile.open(tar_path, "w", format=tarfile.GNU_FORMAT) as tar:
        tar.add(tmp_path / "cell.txt", arcname=os.fsdecode(b"GSM4_\xe9.txt"))
    adata = gseio.read_gse_dir(tar_path)
    assert adata.obs["source_file"].tolist() == ["GSM4_\\xe9.txt"]
    assert float(adata.X.sum()) == _total(4)


# -- outputs are never inputs ----------------------------------------------------------------------------


def _build(root: Path, out: Path, *extra: str) -> anndata.AnnData:
    result = CliRunner().invoke(main, ["build", str(root), "-o", str(out), "-q", *extra])
    assert result.exit_code == 0, result.output
    return anndata.read_h5ad(next(out.glob("*.h5ad")))


def test_a_rebuild_into_an_output_folder_inside_the_input_never_reads_it(tmp_path: Path) -> None:
    root = _folder(tmp_path / "in", {"GSM1_a.txt": 1, "GSM2_b.txt": 2})
    out = root / "processed"
    first = _build(root, out)
    again = _build(root, out, "--overwrite", "--on-error", "skip")
    assert first.n_obs == again.n_obs == 2  # not doubled by the previous outputs
    assert float(again.X.sum()) == _total(1, 2)
    assert _reasons(again)["processed"].startswith("excluded from the input (the output folder of this build")
    report = json.loads((out / "build_report.json").read_text())
    assert report["totals"]["cells"] == 2
    assert report["totals"]["skipped"] == 0


def test_a_folder_holding_a_gseio_build_is_set_aside(tmp_path: Path) -> None:
    root = _folder(tmp_path / "in", {"GSM1_a.txt": 1, "GSM2_b.txt": 2})
    _build(root, root / "old")
    (root / "other").mkdir()
    (root / "other" / "build_report.json").write_text(json.dumps({"tool": "not gseio"}))  # not a gseio report
    (root / "other" / "GSM3_c.txt").write_bytes(_table(3))
    adata = gseio.read_gse_dir(root, on_error="skip")
    assert sorted(adata.obs["source_file"]) == ["GSM1_a.txt", "GSM2_b.txt", "other/GSM3_c.txt"]
    assert _reasons(adata)["old"].startswith("holds a gseio build (its build_report.json was written by gseio)")
    with pytest.raises(InputError, match=r"old: holds a gseio build"):
        gseio.read_gse_dir(root / "old")


def test_the_output_folder_being_the_input_is_refused(tmp_path: Path) -> None:
    root = _folder(tmp_path / "in", {"GSM1_a.txt": 1})
    result = CliRunner().invoke(main, ["build", str(root), "-o", str(root), "-q"])
    assert result.exit_code == 1
    assert "is the output folder too" in result.output
    assert "Traceback" not in result.output
    assert sorted(p.name for p in root.iterdir()) == ["GSM1_a.txt"]


def _gseio_h5ad(tmp_path: Path, cells: dict[str, int]) -> Path:
    built = _folder(tmp_path / "elsewhere", cells)
    _build(built, tmp_path / "built")
    return next((tmp_path / "built").glob("*.h5ad"))


def test_a_gseio_h5ad_beside_the_files_it_was_built_from_never_doubles_them(tmp_path: Path) -> None:
    h5ad = _gseio_h5ad(tmp_path, {"GSM1_a.txt": 1, "GSM2_b.txt": 2})
    root = _folder(tmp_path / "in", {"GSM1_a.txt": 1, "GSM2_b.txt": 2})
    shutil.copy(h5ad, root / "GSE_processed.h5ad")
    with pytest.raises(DuplicateInputError, match=r"GSE_processed\.h5ad: written by gseio .* it holds the cells "
                       r"of 2 files read here too \(GSM1_a\.txt, GSM2_b\.txt\)"):  # fmt: skip
        gseio.read_gse_dir(root)
    adata = gseio.read_gse_dir(root, on_error="skip")
    assert sorted(adata.obs["source_file"]) == ["GSM1_a.txt", "GSM2_b.txt"]
    assert float(adata.X.sum()) == _total(1, 2)
    assert _reasons(adata, "skipped")["GSE_processed.h5ad"].startswith("DuplicateInputError: written by gseio")


def test_a_gseio_h5ad_of_other_files_is_read_with_a_warning(tmp_path: Path) -> None:
    h5ad = _gseio_h5ad(tmp_path, {"GSM8_x.txt": 8})
    root = _folder(tmp_path / "in", {"GSM1_a.txt": 1})
    shutil.copy(h5ad, root / "GSE_other.h5ad")
    with pytest.warns(GseioWarning, match=r"GSE_other\.h5ad: written by gseio .* read as one input"):
        adata = gseio.read_gse_dir(root)
    assert adata.n_obs == 2
    assert float(adata.X.sum()) == _total(1, 8)
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(h5ad, alone / "GSE_other.h5ad")
    assert float(gseio.read_gse_dir(alone).X.sum()) == _total(8)  # alone: read as any h5ad, no warning


def test_exclude_sets_files_and_folders_aside(tmp_path: Path) -> None:
    root = _folder(tmp_path / "in", {"GSM1_a.txt": 1, "GSM2_b.txt": 2, "more/GSM3_c.txt": 3})
    adata = gseio.read_gse_dir(root, exclude=[root / "more", root / "GSM2_b.txt"])
    assert adata.obs["source_file"].tolist() == ["GSM1_a.txt"]
    assert set(_reasons(adata)) == {"more", "GSM2_b.txt"}
