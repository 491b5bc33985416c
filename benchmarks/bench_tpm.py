"""TPM benchmark: ``gseio.pp.tpm`` against a straightforward scipy implementation, in the same run.

Generates a random CSR of 100,000 cells x 30,000 genes with 1,000 stored counts per cell
(100 M non-zeros, float32 counts as gseio assembles them, the last 92 genes named as
ERCC spike-ins) and times, for a full-length protocol (division by gene length) and a UMI
protocol (none):

- ``gseio``: ``gseio.pp.tpm(adata, protocol=..., lengths=...)``, result in ``layers["tpm"]``;
- ``scipy``: the textbook version with diagonal matrices,
  ``Y = X @ diags(w)`` (``w`` = 1/length, 0 for spike-ins), ``diags(1e6 / Y.sum(1)) @ Y``,
  then ``eliminate_zeros()``.

Both results are compared (relative 1e-12) before any figure is printed. Each method
runs ``--repeats`` times, alternating; the medians and the fastest runs are reported, with
their ratios (on a shared machine the fastest run is the better measure of the code).
``--backed`` also times the out-of-core path (X streamed from an .h5ad, the layer written
into it) on the same matrix.

Usage::

    python benchmarks/bench_tpm.py                       # 100 M non-zeros
    python benchmarks/bench_tpm.py --cells 20000 --backed
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse

N_SPIKES = 92


def generate(n_cells: int, n_genes: int, per_cell: int, seed: int = 0) -> sparse.csr_matrix:
    """Counts with ``per_cell`` distinct sorted genes per cell, one drawn from each of ``per_cell`` strides."""
    rng = np.random.default_rng(seed)
    stride = n_genes // per_cell
    indices = np.empty(n_cells * per_cell, dtype=np.int32)
    data = np.empty(n_cells * per_cell, dtype=np.float32)
    base = np.arange(per_cell, dtype=np.int32) * stride
    step = 10_000  # rows generated at once, so the int64 temporaries stay small
    for start in range(0, n_cells, step):
        rows = min(step, n_cells - start)
        lo, hi = start * per_cell, (start + rows) * per_cell
        indices[lo:hi] = (base + rng.integers(0, stride, size=(rows, per_cell), dtype=np.int32)).ravel()
        data[lo:hi] = rng.geometric(0.2, size=rows * per_cell).astype(np.float32)
    indptr = np.arange(n_cells + 1, dtype=np.int64) * per_cell
    return sparse.csr_matrix((data, indices, indptr), shape=(n_cells, n_genes))


def scipy_tpm(X: sparse.csr_matrix, weights: np.ndarray) -> sparse.csr_matrix:
    """The straightforward implementation: two products with diagonal matrices."""
    Y = X @ sparse.diags(weights)
    sums = np.asarray(Y.sum(axis=1)).ravel()
    scale = np.divide(1e6, sums, out=np.zeros_like(sums), where=sums > 0)
    result = sparse.diags(scale) @ Y
    result.eliminate_zeros()
    return result.tocsr()


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=100_000)
    parser.add_argument("--genes", type=int, default=30_000)
    parser.add_argument("--per-cell", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backed", action="store_true", help="also time the out-of-core path")
    args = parser.parse_args()

    import anndata as ad

    import gseio.pp

    t_gen, X = _timed(lambda: generate(args.cells, args.genes, args.per_cell))
    print(
        f"generated {X.shape[0]:,} cells x {X.shape[1]:,} genes, {X.nnz:,} non-zeros in {t_gen:.1f} s", flush=True
    )
    names = [f"G{i:05d}" for i in range(args.genes - N_SPIKES)] + [f"ERCC-{i:05d}" for i in range(N_SPIKES)]
    lengths = pd.Series(np.random.default_rng(1).integers(200, 20_000, size=args.genes).astype(float), index=names)
    adata = ad.AnnData(X=X, var=pd.DataFrame(index=names))
    spike = np.char.startswith(np.array(names), "ERCC-")

    rows = []
    for protocol, full_length in (("Smart-seq2", True), ("10x Chromium", False)):
        weights = np.where(spike, 0.0, 1.0 / lengths.to_numpy() if full_length else 1.0)
        times: dict[str, list[float]] = {"gseio": [], "scipy": []}
        for _ in range(args.repeats):
            t, _ = _timed(
                lambda p=protocol: gseio.pp.tpm(adata, protocol=p, lengths=lengths if p[0] == "S" else None)
            )
            times["gseio"].append(t)
            t, reference = _timed(lambda w=weights: scipy_tpm(X, w))
            times["scipy"].append(t)
            ours = adata.layers["tpm"]
            if not (
                np.array_equal(ours.indptr, reference.indptr)
                and np.array_equal(ours.indices, reference.indices)
                and np.allclose(ours.data, reference.data, rtol=1e-12, atol=0)
            ):
                raise SystemExit(f"{protocol}: gseio and scipy disagree")
            del reference
        rows.append((protocol, times))
        runs = {k: [round(t, 2) for t in v] for k, v in times.items()}
        print(f"  {protocol}: runs in seconds {runs}", flush=True)

    print(f"\n{'protocol':<14}{'':<8}{'gseio s':>9}{'scipy s':>9}{'x faster':>10}{'M nnz/s':>9}")
    for protocol, times in rows:
        for label, pick in (("median", statistics.median), ("fastest", min)):
            g, s = pick(times["gseio"]), pick(times["scipy"])
            print(f"{protocol:<14}{label:<8}{g:>9.2f}{s:>9.2f}{s / g:>10.1f}{X.nnz / g / 1e6:>9.0f}")

    if args.backed:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "bench.h5ad"
            ad.AnnData(X=X, var=pd.DataFrame(index=names)).write_h5ad(path)
            backed = ad.read_h5ad(path, backed="r")
            t, _ = _timed(lambda: gseio.pp.tpm(backed, protocol="Smart-seq2", lengths=lengths))
            gseio.pp.tpm(adata, protocol="Smart-seq2", lengths=lengths)
            same = (backed.layers["tpm"][:] != adata.layers["tpm"]).nnz == 0
            backed.file.close()
            print(f"\nbacked Smart-seq2: {t:.2f} s ({X.nnz / t / 1e6:.0f} M nnz/s), equal to in-memory: {same}")


if __name__ == "__main__":
    main()
