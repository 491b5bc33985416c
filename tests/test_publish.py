"""Outputs appear all at once: a build killed at any moment leaves the old outputs or the new ones, never a mix."""

from __future__ import annotations

import gzip
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pytest

from gseio.export import _publish
from gseio.export.template import RAW_FILES

H5AD = "GSE1_RAW.h5ad"


def _series(folder: Path, seed: int, n_files: int) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    genes = [f"G{i}" for i in range(400)]
    for i in range(n_files):
        values = rng.poisson(0.5, len(genes))
        text = "".join(f"{g}\t{v}\n" for g, v in zip(genes, values.tolist(), strict=True))
        (folder / f"GSM{100 + i}_c{i}.txt.gz").write_bytes(gzip.compress(text.encode(), compresslevel=1))
    return folder


def _build(src: Path, out: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "gseio", "build", str(src), "-o", str(out), "--name", "GSE1_RAW", "-q",
               "--overwrite", "--no-resume"]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _state(out: Path) -> dict[str, bytes]:
    """The text outputs' bytes, plus the h5ad's matrix and cell names (its bytes carry time stamps)."""
    state = {name: (out / name).read_bytes() for name in RAW_FILES if (out / name).exists()}
    if (out / H5AD).exists():
        adata = ad.read_h5ad(out / H5AD)
        state[H5AD] = adata.X.toarray().tobytes() + "\n".join(adata.obs_names).encode()
    return state


@pytest.mark.parametrize("seed", [0])
def test_a_killed_overwrite_leaves_old_or_new_outputs_whole(tmp_path, seed):
    old_src, new_src = _series(tmp_path / "old", 1, 40), _series(tmp_path / "new", 2, 60)
    references = {}
    for label, src in (("old", old_src), ("new", new_src)):
        started = time.monotonic()
        proc = _build(src, tmp_path / f"ref_{label}")
        assert proc.wait() == 0, proc.stderr.read().decode() if proc.stderr else ""
        references[label] = _state(tmp_path / f"ref_{label}")
        duration = time.monotonic() - started
    assert references["old"] != references["new"]
    out = tmp_path / "out"
    rng = random.Random(seed)
    seen = {"old": 0, "new": 0}
    for _ in range(10):
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(tmp_path / "ref_old", out)
        (out / "notes.md").write_text("mine\n")
        proc = _build(new_src, out)
        time.sleep(rng.uniform(0.3, 1.1) * duration)  # mostly late: writing and moving outputs
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        state = _state(out)
        label = next((k for k, v in references.items() if v == state), None)
        assert label is not None, f"a mix of outputs after a kill: {sorted(state)}"
        seen[label] += 1
        assert (out / "notes.md").read_text() == "mine\n"  # the curator's own files survive either way
    assert seen["old"] + seen["new"] == 10
    # the next build cleans what killed builds left beside the folder
    proc = _build(new_src, out)
    assert proc.wait() == 0
    assert _state(out) == references["new"]
    assert not [p for p in tmp_path.iterdir() if _publish.STAGING_MARK in p.name]


def test_exchange_swaps_two_folders(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x").write_text("a")
    (b / "x").write_text("b")
    swapped = _publish.exchange(a, b)
    if sys.platform != "linux":  # elsewhere the fallback (tested below) is used
        assert not swapped
        return
    assert swapped
    assert (a / "x").read_text() == "b"
    assert (b / "x").read_text() == "a"


def test_file_by_file_fallback_moves_every_output(tmp_path, monkeypatch):
    monkeypatch.setattr(_publish, "exchange", lambda a, b: False)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    (out / "old_output.tsv").write_text("old")
    with _publish.staging_folder(out) as staging:
        (staging / "new_output.tsv").write_text("new")
        (staging / "build_report.json").write_text("{}")
        _publish.publish(staging, out, produced=["new_output.tsv", "build_report.json"], drop={"old_output.tsv"},
                         last="build_report.json")  # fmt: skip
    assert sorted(p.name for p in out.iterdir()) == ["build_report.json", "keep.txt", "new_output.tsv"]
    assert not [p for p in tmp_path.iterdir() if _publish.STAGING_MARK in p.name]


def test_a_new_folder_appears_whole(tmp_path):
    out = tmp_path / "fresh"
    with _publish.staging_folder(out) as staging:
        (staging / "a.tsv").write_text("a")
        _publish.publish(staging, out, produced=["a.tsv"])
    assert [p.name for p in out.iterdir()] == ["a.tsv"]


def test_stale_staging_of_a_dead_process_is_removed(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".out{_publish.STAGING_MARK}{int(dead.stdout)}-abc"
    stale.mkdir()
    mine = tmp_path / f".out{_publish.STAGING_MARK}{os.getpid()}-def"
    mine.mkdir()
    _publish.remove_stale(out)
    assert not stale.exists()
    assert mine.exists()  # a live process's staging is left alone


def test_a_symlinked_output_folder_stays_a_symlink(tmp_path):
    target = tmp_path / "data" / "results"
    target.mkdir(parents=True)
    (target / "old.tsv").write_text("old")
    link = tmp_path / "results"
    link.symlink_to(target, target_is_directory=True)
    with _publish.staging_folder(link) as staging:
        assert staging.parent == target.parent  # beside the real folder, on its file system
        (staging / "new.tsv").write_text("new")
        _publish.publish(staging, link, produced=["new.tsv"], drop={"old.tsv"})
    assert link.is_symlink()
    assert sorted(p.name for p in target.iterdir()) == ["new.tsv"]


def _fallback_build(src: Path, out: Path) -> subprocess.Popen:
    """A build into the current folder: the folders cannot be swapped, the outputs move in one by one."""
    command = [sys.executable, "-m", "gseio", "build", str(src), "-o", ".", "--name", "GSE1_RAW", "-q",
               "--overwrite", "--no-resume"]  # fmt: skip
    return subprocess.Popen(command, cwd=out, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _detected_as_mixed(out: Path) -> bool:
    """The marker is there, and every reader of the folder says it may mix two builds."""
    import gseio
    from gseio.errors import TemplateError
    from gseio.report import ConservationError

    if not (out / _publish.PUBLISHING_MARKER).exists():
        return False
    with pytest.raises(TemplateError, match="interrupted while it replaced these files one by one"):
        gseio.read_template(out)
    report = {"totals": {"cells": 0, "total_counts": 0.0, "integer_counts": True}}
    with pytest.raises(ConservationError, match="interrupted while it replaced the files one by one"):
        gseio.check_outputs(report, template=out)
    return True


def test_a_killed_file_by_file_publish_is_old_new_or_marked(tmp_path):
    old_src, new_src = _series(tmp_path / "old", 1, 40), _series(tmp_path / "new", 2, 60)
    references = {}
    for label, src in (("old", old_src), ("new", new_src)):
        started = time.monotonic()
        proc = _build(src, tmp_path / f"ref_{label}")
        assert proc.wait() == 0, proc.stderr.read().decode() if proc.stderr else ""
        references[label] = _state(tmp_path / f"ref_{label}")
        duration = time.monotonic() - started
    out = tmp_path / "out"
    rng = random.Random(1)
    seen = {"old": 0, "new": 0, "marked": 0}
    for _ in range(8):
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(tmp_path / "ref_old", out)
        (out / "notes.md").write_text("mine\n")
        proc = _fallback_build(new_src, out)
        time.sleep(rng.uniform(0.5, 1.1) * duration)  # mostly late: moving the outputs
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert (out / "notes.md").read_text() == "mine\n"
        if _detected_as_mixed(out):
            seen["marked"] += 1
            continue
        state = _state(out)
        label = next((k for k, v in references.items() if v == state), None)
        assert label is not None, f"a mix of outputs after a kill, and no marker: {sorted(state)}"
        assert (out / "build_report.json").is_file()  # without the marker, a report vouches for the set
        seen[label] += 1
    assert sum(seen.values()) == 8
    proc = _fallback_build(new_src, out)  # the next build repairs a marked folder
    assert proc.wait() == 0, proc.stderr.read().decode() if proc.stderr else ""
    assert _state(out) == references["new"]
    assert not (out / _publish.PUBLISHING_MARKER).exists()


def test_an_interrupted_file_by_file_publish_is_detected_and_repaired(tmp_path, monkeypatch):
    import errno

    from click.testing import CliRunner

    import gseio
    from gseio.cli import main

    src = _series(tmp_path / "in", 3, 4)  # 4 cells
    out = tmp_path / "out"
    runner = CliRunner()
    assert runner.invoke(main, ["build", str(src), "-o", str(out), "-q"]).exit_code == 0
    monkeypatch.chdir(out)  # the current folder: published file by file
    replace = os.replace

    def failing(a, b, *args, **kwargs):
        into_outdir = _publish.STAGING_MARK not in str(Path(b).parent)  # not a write inside the staging folder
        if Path(b).name == "genes_rawCounts.tsv" and into_outdir:
            raise OSError(errno.EIO, os.strerror(errno.EIO), str(a), None, str(b))
        return replace(a, b, *args, **kwargs)

    monkeypatch.setattr(os, "replace", failing)
    broken = runner.invoke(main, ["build", str(src), "-o", ".", "-q", "--overwrite"])
    monkeypatch.setattr(os, "replace", replace)
    assert broken.exit_code == 1
    assert broken.output == f"error: {out / 'genes_rawCounts.tsv'}: cannot be written: Input/output error\n"
    marker = _publish.interrupted_publish(out)
    assert marker is not None
    assert marker["outputs"][-1] == "build_report.json"
    assert not (out / "build_report.json").exists()  # the old report no longer vouches for the folder
    assert _detected_as_mixed(out)
    refused = runner.invoke(main, ["build", str(src), "-o", ".", "-q"])
    assert refused.exit_code == 1
    assert ".gseio-publishing is there): they may mix two builds; pass --overwrite" in refused.output
    repaired = runner.invoke(main, ["build", str(src), "-o", ".", "-q", "--overwrite", "--name", "other"])
    assert repaired.exit_code == 0, repaired.output
    assert _publish.interrupted_publish(out) is None
    assert gseio.read_template(out).n_obs == 4
    # the old report is gone, but the marker named the earlier h5ad: it does not outlive the repair
    assert sorted(p.name for p in out.glob("*.h5ad")) == ["other.h5ad"]


def test_publish_removes_only_plain_files_it_is_told_about(tmp_path, monkeypatch):
    outside = tmp_path / "around"
    out = outside / "out"
    out.mkdir(parents=True)
    (outside / "x").write_text("beside\n")
    (out / "old.tsv").write_text("old\n")
    (out / "user_dir").mkdir()
    (out / "user_dir" / "f").write_text("mine\n")
    (out / "link.tsv").symlink_to(outside / "x")
    drop = {"old.tsv", "..", ".", "../x", str(outside / "x"), "user_dir", "link.tsv", "user_dir/f", ""}
    for swap in (True, False):
        if not swap:
            monkeypatch.setattr(_publish, "exchange", lambda a, b: False)
            (out / "old.tsv").write_text("old\n")
        with _publish.staging_folder(out) as staging:
            (staging / "new.tsv").write_text("new\n")
            _publish.publish(staging, out, produced=["new.tsv"], drop=drop)
        assert sorted(p.name for p in out.iterdir()) == ["link.tsv", "new.tsv", "user_dir"]
        assert (out / "link.tsv").is_symlink()
        assert (out / "user_dir" / "f").read_text() == "mine\n"
        assert sorted(p.name for p in outside.iterdir()) == ["out", "x"]
        assert (outside / "x").read_text() == "beside\n"
