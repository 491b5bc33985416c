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
