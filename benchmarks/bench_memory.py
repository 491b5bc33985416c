"""Memory benchmark: peak resident memory of reading large text tables, against the size of their result.

Generates (once, cached) three inputs a tester used to show that memory grew with the text, not
with the result:

- ``wide200k``: a genes x cells wide table with 200,000 cell columns (1,250 genes, ~10% non-zeros,
  gzip, ~43 MB), read with ``format="wide_table"``;
- ``dense``: a 20,000 genes x 2,000 cells wide table (~20% non-zeros, gzip);
- ``percell10m``: a per-cell file of 10 million identical lines (gzip, under the decompression-bomb
  limit: it expands to 50 MB), read with ``format="cell_table"``.

Each method runs in a fresh subprocess, so that its peak RSS (``ru_maxrss`` of the child) is its own:

- ``floor``: only decompress the input (ISA-L);
- ``gseio``: ``gseio.read_gse_dir`` with this checkout's gseio;
- ``before``: the same with the gseio found under ``--before`` (e.g. ``git archive <commit> src | tar -x``);
- ``build-256MB``: ``gseio build INPUT -o OUT --max-memory 256MB`` (the whole command: h5ad and
  template written), which should pick the out-of-core path by itself when the result may exceed it.

Printed per input: seconds, peak RSS, the size of the resulting CSR matrix (``X.data`` +
``X.indices`` + ``X.indptr``), peak / CSR, peak - CSR, and peak - CSR - baseline (``baseline``:
the peak of reading a two-line file, i.e. the libraries and machinery). The target: peak under
about 2x the CSR + 300 MB. Compare ratios within one invocation (the machine may be shared).

Usage::

    python benchmarks/bench_memory.py
    python benchmarks/bench_memory.py --before /tmp/gseio-before/src --inputs wide200k dense
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"

INPUTS = {
    "wide200k": {"format": "wide_table"},
    "dense": {"format": "wide_table"},
    "percell10m": {"format": "cell_table"},
}


def _wide(path: Path, n_genes: int, n_cells: int, density: float, seed: int) -> None:
    import numpy as np

    rng = np.random.default_rng(seed)
    words = np.array([str(i).encode() for i in range(100)], dtype=object)
    header = b"gene\t" + b"\t".join(f"AAACCTG{j:09d}-1".encode() for j in range(n_cells)) + b"\n"
    with gzip.open(path, "wb", compresslevel=6) as fh:
        fh.write(header)
        for i in range(n_genes):
            counts = np.where(rng.random(n_cells) < density, np.minimum(rng.geometric(0.3, n_cells), 99), 0)
            fh.write(f"ENSG{i:011d}\t".encode() + b"\t".join(words[counts].tolist()) + b"\n")


def generate(folder: Path, name: str) -> Path:
    """The input folder of ``name`` (made once)."""
    target = folder / name
    done = folder / f".{name}.complete"  # outside the input: with a forced format every file is read
    if done.exists():
        return target
    target.mkdir(parents=True, exist_ok=True)
    if name == "wide200k":
        _wide(target / "GSE0_wide200k_counts.txt.gz", 1250, 200_000, 0.10, seed=0)
    elif name == "dense":
        _wide(target / "GSE0_dense_counts.txt.gz", 20_000, 2_000, 0.20, seed=1)
    elif name == "percell10m":
        with gzip.open(target / "GSM0_cell.counts.txt.gz", "wb", compresslevel=9) as fh:
            line = b"G1\t1\n" * 100_000
            for _ in range(100):
                fh.write(line)
    else:
        raise SystemExit(f"unknown input {name}")
    done.write_text("ok")
    return target


def run_method(method: str, folder: Path, fmt: str) -> dict:
    """Run one method in this process (the child); its result as JSON-able values."""
    t0 = time.perf_counter()
    files = sorted(p for p in folder.iterdir() if p.name.endswith(".gz"))
    if method == "baseline":  # the fixed cost: imports and machinery, reading a two-line file
        import gseio

        tiny = Path(tempfile.mkdtemp(prefix="bench_memory_"))
        (tiny / "cell.txt").write_text("G1\t1\nG2\t2\n")
        result = {"nnz": int(gseio.read_gse_dir(tiny, format="cell_table").X.nnz)}
        shutil.rmtree(tiny)
    elif method == "floor":
        from isal import igzip

        result = {"bytes": sum(len(igzip.decompress(p.read_bytes())) for p in files)}
    elif method in ("gseio", "before"):
        import gseio

        adata = gseio.read_gse_dir(folder, format=fmt)
        X = adata.X
        result = {
            "nnz": int(X.nnz),
            "shape": list(adata.shape),
            "sum": float(X.sum(dtype="float64")),
            "csr_mb": (X.data.nbytes + X.indices.nbytes + X.indptr.nbytes) / 2**20,
        }
    else:
        raise SystemExit(f"unknown method {method}")
    result["seconds"] = time.perf_counter() - t0
    return result


def measure(method: str, folder: Path, fmt: str, src: Path) -> dict:
    """``method`` on ``folder`` in a fresh interpreter importing gseio from ``src``; result and peak RSS."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    if method.startswith("build"):
        out_dir = Path(tempfile.mkdtemp(prefix="bench_memory_"))
        args = [sys.executable, "-m", "gseio", "build", str(folder), "-o", str(out_dir / "out"),
                "--format", fmt, "--max-memory", "256MB", "--no-resume"]  # fmt: skip
    else:
        args = [sys.executable, __file__, "--run", method, str(folder), fmt]
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    stdout = proc.stdout.read()
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)  # the child's own peak, not the parent's
    seconds = time.perf_counter() - t0
    if status != 0:
        raise SystemExit(f"{method} on {folder.name} failed:\n{stderr.decode()[-2000:]}")
    if method.startswith("build"):
        shutil.rmtree(out_dir, ignore_errors=True)
        text = stdout.decode()
        result = {"seconds": seconds, "mode": "out of core" if "out of core" in text else "in memory"}
    else:
        result = json.loads(stdout)
    result["peak_rss_mb"] = usage.ru_maxrss / 1024
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", nargs="+", default=list(INPUTS), choices=list(INPUTS))
    parser.add_argument("--before", type=Path, default=None, help="a gseio source folder to compare with")
    parser.add_argument("--no-build", action="store_true", help="skip the gseio build --max-memory runs")
    parser.add_argument("--data", type=Path, default=HERE / ".data")
    parser.add_argument("--run", nargs=3, metavar=("METHOD", "FOLDER", "FORMAT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        print(json.dumps(run_method(args.run[0], Path(args.run[1]), args.run[2])))
        return
    methods = (
        ["baseline", "floor", "gseio"]
        + (["before"] if args.before else [])
        + ([] if args.no_build else ["build-256MB"])
    )
    for name in args.inputs:
        t0 = time.perf_counter()
        folder = generate(args.data, name)
        size = sum(p.stat().st_size for p in folder.iterdir() if p.name.endswith(".gz"))
        print(
            f"\n{name}: {size / 2**20:.1f} MiB compressed (generated/cached in {time.perf_counter() - t0:.0f} s)"
        )
        rows = {}
        for method in methods:
            src = args.before if method == "before" else SRC
            rows[method] = measure(method, folder, INPUTS[name]["format"], src)
            print(f"  measured {method}: {rows[method]['seconds']:.1f} s", flush=True)
        if "before" in rows and any(rows["before"][k] != rows["gseio"][k] for k in ("nnz", "shape", "sum")):
            raise SystemExit(f"before and after disagree: {rows['before']} {rows['gseio']}")
        csr = rows["gseio"]["csr_mb"]
        expanded = rows["floor"]["bytes"] / 2**20
        print(f"  decompressed {expanded:.0f} MiB; result {rows['gseio']['shape']}, {rows['gseio']['nnz']:,} "
              f"non-zeros, CSR {csr:.1f} MiB")  # fmt: skip
        base = rows["baseline"]["peak_rss_mb"]
        print(f"  {'method':<14}{'seconds':>9}{'peak RSS MiB':>14}{'peak / CSR':>12}{'peak - CSR':>12}"
              f"{'peak - CSR - baseline':>23}  mode")  # fmt: skip
        for method, row in rows.items():
            peak = row["peak_rss_mb"]
            ratio = f"{peak / csr:.2f}" if csr >= 1 else "-"
            print(f"  {method:<14}{row['seconds']:>9.2f}{peak:>14.0f}{ratio:>12}{peak - csr:>12.0f}"
                  f"{peak - csr - base:>23.0f}  {row.get('mode', '')}")  # fmt: skip


if __name__ == "__main__":
    main()
