"""A build killed midway (SIGKILL) and restarted with the same command equals a clean build."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time

import anndata as ad
import numpy as np
from click.testing import CliRunner

from gseio.cli import CACHE_FOLDER, main
from gseio.export.template import RAW_FILES


def _series(folder, n_files=1500, n_genes=1500):
    folder.mkdir()
    rng = np.random.default_rng(1)
    genes = [f"ENSG{i:011d}" for i in range(n_genes)]
    for i in range(n_files):
        values = rng.poisson(0.3, n_genes)
        text = "".join(f"{g}\t{v}\n" for g, v in zip(genes, values.tolist(), strict=True))
        (folder / f"GSM{10_000 + i}_c{i}.txt.gz").write_bytes(gzip.compress(text.encode(), compresslevel=1))
    return folder


def test_killed_build_resumes_and_equals_a_clean_build(tmp_path):
    src = _series(tmp_path / "GSE1_RAW")
    out = tmp_path / "out"
    cache = out / CACHE_FOLDER
    command = [sys.executable, "-m", "gseio", "build", str(src), "-o", str(out), "-q", "--jobs", "1"]
    proc = subprocess.Popen(command)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done = len(list(cache.glob("*.unit"))) if cache.is_dir() else 0
        if done >= 200 or proc.poll() is not None:
            break
        time.sleep(0.005)
    assert proc.poll() is None, "the build finished before it could be interrupted"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not any((out / name).exists() for name in RAW_FILES)  # nothing that looks complete
    parsed_before_kill = len(list(cache.glob("*.unit")))
    assert 200 <= parsed_before_kill < 1500

    resumed = CliRunner().invoke(main, ["build", str(src), "-o", str(out)])
    assert resumed.exit_code == 0, resumed.output
    reused = int(resumed.output.split(" reused from an interrupted build")[0].rsplit(", ", 1)[1].replace(",", ""))
    assert reused >= parsed_before_kill - 1  # the unit being written at the kill may be lost, never half-read
    assert not cache.exists()  # cleared once the build is complete

    clean = CliRunner().invoke(main, ["build", str(src), "-o", str(tmp_path / "clean"), "--no-resume"])
    assert clean.exit_code == 0, clean.output
    for name in RAW_FILES:
        assert (out / name).read_bytes() == (tmp_path / "clean" / name).read_bytes()
    a, b = ad.read_h5ad(out / "GSE1_RAW.h5ad"), ad.read_h5ad(tmp_path / "clean" / "GSE1_RAW.h5ad")
    assert (a.X != b.X).nnz == 0
    assert a.obs.equals(b.obs)
    assert sorted(p.name for p in out.iterdir()) == sorted([*RAW_FILES, "GSE1_RAW.h5ad", "build_report.json"])
