"""Scale benchmark: out-of-core builds of 100k, 300k and 1M cells within a memory budget.

Generates (once, cached, with ``bench_10x.generate``) a GEO-flattened 10x-style series of
100 samples x 10,000 cells (36,601 genes, ~200 non-zeros per cell, gzip) and builds the
first 10, 30 and 100 samples out of core (``read_gse_dir(..., backed=...)``), each in a
fresh subprocess. Peak memory is sampled by this script itself (the child's VmRSS every
20 ms) and checked against the kernel's own peak (``ru_maxrss``). Prints time, non-zeros,
seconds per million non-zeros (flat = linear in the data) and peak RSS, and writes a plot.

Usage::

    python benchmarks/bench_scale.py                      # 100k, 300k, 1M cells
    python benchmarks/bench_scale.py --plot docs/_static/scale.png
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_10x import generate  # noqa: E402

#: Samples per point of the curve, selected by GSM accession patterns of the generated series.
POINTS = {10: "GSM910000?_*", 30: "GSM91000[0-2]?_*", 100: "GSM9100???_*"}


def run(folder: Path, pattern: str, out: Path) -> dict:
    import gseio

    t0 = time.perf_counter()
    adata = gseio.read_gse_dir(folder, pattern=pattern, backed=out)
    seconds = time.perf_counter() - t0
    import h5py

    with h5py.File(out, "r") as f:
        nnz = int(f["X/indptr"][-1])
    return {"seconds": seconds, "cells": adata.n_obs, "genes": adata.n_vars, "nnz": nnz}


def _sample_rss(pid: int, peak: list[int], done: threading.Event) -> None:
    status = Path(f"/proc/{pid}/status")
    while not done.is_set():
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmRSS:"):
                    peak[0] = max(peak[0], int(line.split()[1]) * 1024)
        except OSError:
            return
        time.sleep(0.02)


def measure(folder: Path, pattern: str) -> dict:
    with tempfile.TemporaryDirectory(dir=HERE / ".data") as tmp:
        command = [sys.executable, __file__, "--run", str(folder), pattern, str(Path(tmp) / "out.h5ad")]
        proc = subprocess.Popen(command, stdout=subprocess.PIPE)
        peak, done = [0], threading.Event()
        sampler = threading.Thread(target=_sample_rss, args=(proc.pid, peak, done), daemon=True)
        sampler.start()
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        done.set()
        sampler.join()
    if status != 0:
        raise SystemExit(f"build of {pattern} failed")
    result = json.loads(out)
    result["peak_rss_mb"] = peak[0] / 2**20
    result["maxrss_mb"] = usage.ru_maxrss / 1024
    return result


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = [r["cells"] / 1e3 for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    left.plot(cells, [r["seconds"] for r in rows], "o-")
    left.set(xlabel="cells (thousands)", ylabel="wall time (s)", title="time grows linearly")
    right.plot(cells, [r["peak_rss_mb"] for r in rows], "o-", color="C1")
    right.axhline(1536, ls="--", color="grey", label="1.5 GB target")
    right.set(
        xlabel="cells (thousands)",
        ylabel="peak RSS (MB)",
        title="memory: the matrix stays on disk",
        ylim=(0, None),
    )
    right.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-cell", type=int, default=200, help="non-zeros drawn per cell")
    parser.add_argument("--points", type=int, nargs="+", default=sorted(POINTS), help="samples per point")
    parser.add_argument("--data", type=Path, default=HERE / ".data")
    parser.add_argument("--plot", type=Path, default=None, help="write a PNG of the curve here")
    parser.add_argument("--run", nargs=3, metavar=("FOLDER", "PATTERN", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        print(json.dumps(run(Path(args.run[0]), args.run[1], Path(args.run[2]))))
        return
    t0 = time.perf_counter()
    args.data.mkdir(parents=True, exist_ok=True)
    folder = generate(args.data, max(args.points), 10_000, 36_601, args.per_cell)
    print(f"data: {folder} (generated/cached in {time.perf_counter() - t0:.0f} s)", flush=True)
    rows = []
    for samples in args.points:
        rows.append(measure(folder, POINTS[samples]))
        print(f"  measured {rows[-1]['cells']:,} cells", flush=True)
    header = ("cells", 10), ("non-zeros", 15), ("seconds", 10), ("s per 1e6 nnz", 15), ("peak RSS MB", 13)
    print("\n" + "".join(f"{name:>{width}}" for name, width in header) + f"{'maxrss MB':>11}")
    for r in rows:
        per = r["seconds"] / r["nnz"] * 1e6
        print(f"{r['cells']:>10,}{r['nnz']:>15,}{r['seconds']:>10.1f}{per:>15.3f}{r['peak_rss_mb']:>13.0f}"
              f"{r['maxrss_mb']:>11.0f}")  # fmt: skip
    if args.plot:
        plot(rows, args.plot)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
