"""Per-cell benchmark: gseio.read_gse_dir vs the hand-written loop curators use today.

Generates (once, cached) a GEO-style folder of Smart-seq2-like per-cell files
(default 1,000 files x 58,000 genes, ~6,000 detected per cell, gzip) and times, in
the same run and each in a fresh subprocess (so peak RSS is the method's own):

- ``decompress-isal`` / ``decompress-zlib``: only decompress every file (the floor);
- ``naive-loop``: pandas.read_csv per file, transpose, coo_matrix, sparse.vstack onto
  the running matrix (the loop in ../shared/TEMPLATE_FORMAT.md);
- ``gseio``: gseio.read_gse_dir (default: a thread per core); ``gseio-1-thread``: n_jobs=1.

Usage::

    python benchmarks/bench_percell.py                 # full size, naive loop once
    python benchmarks/bench_percell.py --files 200     # quicker
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _bench  # noqa: E402


def generate(folder: Path, n_files: int, n_genes: int, detected: int, seed: int = 0) -> Path:
    import numpy as np

    target = folder / f"percell_{n_files}x{n_genes}_{detected}"
    done = target / ".complete"
    if done.exists():
        return target
    target.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    genes = [f"ENSG{i * 7 + 3:011d}" for i in range(n_genes)]
    prefix = [g + "\t" for g in genes]
    for f in range(n_files):
        values = np.zeros(n_genes, dtype=np.int64)
        idx = rng.choice(n_genes, size=detected, replace=False)
        values[idx] = np.ceil(rng.lognormal(2.0, 2.0, size=detected)).astype(np.int64)
        text = f"gene\tcell_{f}\n" + "".join(
            p + str(v) + "\n" for p, v in zip(prefix, values.tolist(), strict=False)
        )
        (target / f"GSM{9_000_000 + f}_cell_{f:05d}.counts.txt.gz").write_bytes(
            gzip.compress(text.encode(), compresslevel=6)
        )
    done.write_text("ok")
    return target


def run_method(method: str, folder: Path) -> dict:
    files = sorted(p for p in folder.iterdir() if p.name.endswith(".gz"))
    t0 = time.perf_counter()
    if method == "decompress-isal":
        from isal import igzip

        total = sum(len(igzip.decompress(p.read_bytes())) for p in files)
        result = {"bytes": total}
    elif method == "decompress-zlib":
        total = sum(len(gzip.decompress(p.read_bytes())) for p in files)
        result = {"bytes": total}
    elif method == "naive-loop":
        import gc

        import pandas as pd
        from scipy import sparse

        matrix = None
        for p in files:
            df = pd.read_csv(p, sep="\t", index_col=0)
            row = sparse.coo_matrix(df.T.values)
            matrix = row if matrix is None else sparse.vstack([matrix, row])
            del df, row
            gc.collect()
        result = {"nnz": int(matrix.nnz), "shape": list(matrix.shape)}
    elif method.startswith("gseio"):
        import gseio

        adata = gseio.read_gse_dir(folder, n_jobs=1 if method == "gseio-1-thread" else None)
        result = {"nnz": int(adata.X.nnz), "shape": list(adata.shape)}
    else:
        raise SystemExit(f"unknown method {method}")
    result["seconds"] = time.perf_counter() - t0
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--genes", type=int, default=58000)
    parser.add_argument("--detected", type=int, default=6000)
    parser.add_argument("--repeats", type=int, default=3, help="repeats of the fast methods (median reported)")
    parser.add_argument("--naive-repeats", type=int, default=1)
    parser.add_argument("--data", type=Path, default=HERE / ".data")
    parser.add_argument("--run", nargs=2, metavar=("METHOD", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        print(json.dumps(run_method(args.run[0], Path(args.run[1]))))
        return
    t0 = time.perf_counter()
    folder = generate(args.data, args.files, args.genes, args.detected)
    print(f"data: {folder} ({args.files} files; generated/cached in {time.perf_counter() - t0:.1f} s)")
    methods = ("decompress-isal", "decompress-zlib", "gseio", "gseio-1-thread", "naive-loop")
    repeats = {m: args.naive_repeats if m == "naive-loop" else args.repeats for m in methods}
    rows = _bench.measure_all(__file__, folder, repeats)
    _bench.same_result(rows, ("gseio", "gseio-1-thread", "naive-loop"), ("nnz",))
    _bench.print_table(rows, baseline="naive-loop", floor="decompress-isal", baseline_label="naive")


if __name__ == "__main__":
    main()
