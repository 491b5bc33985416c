"""10x benchmark: gseio.read_gse_dir vs the scanpy way on a GEO-flattened 10x folder.

Generates (once, cached) a folder as GEO serves a 10x series after extracting its
``GSE..._RAW.tar``: per-sample prefixed triplets side by side
(``GSM9100000_S0_matrix.mtx.gz`` + ``..._barcodes.tsv.gz`` + ``..._features.tsv.gz``),
default 10 samples x 5,000 cells x 36,601 genes, ~1,500 non-zeros per cell, gzip.
Then times, in the same run and each in a fresh subprocess (so peak RSS is the
method's own):

- ``decompress-isal``: only decompress every matrix (the floor);
- ``scanpy``: ``scanpy.read_10x_mtx(folder, prefix=...)`` per sample, then
  ``anndata.concat(join="outer")`` (what curators write today);
- ``gseio``: ``gseio.read_gse_dir(folder)`` (a thread per core).

The final CSR size (data + indices + indptr bytes of gseio's ``X``) is printed so that
"peak RSS <= CSR + 400 MB" can be checked.

Usage::

    python benchmarks/bench_10x.py                  # full size
    python benchmarks/bench_10x.py --samples 3      # quicker
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _bench  # noqa: E402


def _sample_matrix(rng, n_cells: int, n_genes: int, per_cell: int):
    """A genes x cells COO in Cell Ranger's order (by cell, then gene), skewed towards a few genes."""
    import numpy as np
    from scipy import sparse

    # squaring a uniform variate favours low gene indices, like highly expressed genes
    genes = (rng.random((n_cells, per_cell)) ** 2 * n_genes).astype(np.int32)
    genes.sort(axis=1)
    keep = np.ones(genes.shape, dtype=bool)
    keep[:, 1:] = genes[:, 1:] != genes[:, :-1]
    cells = np.broadcast_to(np.arange(n_cells, dtype=np.int32)[:, None], genes.shape)[keep]
    rows = genes[keep]
    values = np.ceil(rng.lognormal(0.0, 1.2, size=rows.size)).astype(np.int64)
    return sparse.coo_matrix((values, (rows, cells)), shape=(n_genes, n_cells))


def generate(folder: Path, n_samples: int, n_cells: int, n_genes: int, per_cell: int, seed: int = 0) -> Path:
    import numpy as np
    import scipy.io
    from isal import igzip

    target = folder / f"tenx_{n_samples}x{n_cells}x{n_genes}_{per_cell}"
    done = target / ".complete"
    if done.exists():
        return target
    target.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    features = "".join(f"ENSG{i * 7 + 3:011d}\tGENE{i}\tGene Expression\n" for i in range(n_genes)).encode()
    for s in range(n_samples):
        prefix = f"GSM{9_100_000 + s}_S{s}_"
        buffer = io.BytesIO()
        scipy.io.mmwrite(buffer, _sample_matrix(rng, n_cells, n_genes, per_cell), field="integer")
        (target / f"{prefix}matrix.mtx.gz").write_bytes(igzip.compress(buffer.getvalue(), compresslevel=2))
        del buffer
        letters = np.array(list("ACGT"))
        codes = letters[rng.integers(0, 4, size=(n_cells, 16))]
        barcodes = "".join("".join(c) + "-1\n" for c in codes).encode()
        (target / f"{prefix}barcodes.tsv.gz").write_bytes(igzip.compress(barcodes))
        (target / f"{prefix}features.tsv.gz").write_bytes(igzip.compress(features))
    done.write_text("ok")
    return target


def _prefixes(folder: Path) -> list[str]:
    return sorted(p.name[: -len("matrix.mtx.gz")] for p in folder.glob("*matrix.mtx.gz"))


def run_method(method: str, folder: Path) -> dict:
    t0 = time.perf_counter()
    if method == "decompress-isal":
        from isal import igzip

        total = sum(len(igzip.decompress(p.read_bytes())) for p in sorted(folder.glob("*matrix.mtx.gz")))
        result: dict = {"bytes": total}
    elif method == "scanpy":
        import anndata as ad
        import scanpy as sc

        prefixes = _prefixes(folder)
        adatas = [sc.read_10x_mtx(folder, prefix=p, var_names="gene_ids") for p in prefixes]
        adata = ad.concat(adatas, join="outer", label="sample", keys=[p.rstrip("_") for p in prefixes],
                          index_unique="_")  # fmt: skip
        del adatas
        result = {"nnz": int(adata.X.nnz), "shape": list(adata.shape)}
    elif method == "gseio":
        import gseio

        adata = gseio.read_gse_dir(folder)
        X = adata.X
        csr_bytes = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
        result = {"nnz": int(X.nnz), "shape": list(adata.shape), "csr_mb": csr_bytes / 2**20}
    else:
        raise SystemExit(f"unknown method {method}")
    result["seconds"] = time.perf_counter() - t0
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--cells", type=int, default=5000)
    parser.add_argument("--genes", type=int, default=36601)
    parser.add_argument("--per-cell", type=int, default=1500, help="non-zeros drawn per cell (before dedup)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of the fast methods (median reported)")
    parser.add_argument("--scanpy-repeats", type=int, default=1)
    parser.add_argument("--data", type=Path, default=HERE / ".data")
    parser.add_argument("--run", nargs=2, metavar=("METHOD", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        print(json.dumps(run_method(args.run[0], Path(args.run[1]))))
        return
    t0 = time.perf_counter()
    folder = generate(args.data, args.samples, args.cells, args.genes, args.per_cell)
    print(f"data: {folder} ({args.samples} samples; generated/cached in {time.perf_counter() - t0:.1f} s)")
    repeats = {"decompress-isal": args.repeats, "gseio": args.repeats, "scanpy": args.scanpy_repeats}
    rows = _bench.measure_all(__file__, folder, repeats)
    _bench.same_result(rows, ("gseio", "scanpy"), ("nnz", "shape"))
    _bench.print_table(rows, baseline="scanpy", floor="decompress-isal", baseline_label="scanpy")
    gseio_run = rows["gseio"]["result"]
    csr = gseio_run["csr_mb"]
    peak = rows["gseio"]["peak_rss_mb"]
    print(f"\nfinal CSR (data+indices+indptr): {csr:.0f} MB")
    print(
        f"gseio peak RSS {peak:.0f} MB = CSR + {peak - csr:.0f} MB (targets: CSR + 400 MB, formats issue; "
        "CSR + 300 MB, engine issue)"
    )
    print(f"shape {gseio_run['shape']}, nnz {gseio_run['nnz']:,}")


if __name__ == "__main__":
    main()
