"""GTF benchmark: gseio.genes.gene_table vs a straightforward pandas script.

Generates (once, cached under ``benchmarks/.data``) a GENCODE-like gzipped GTF of about
3 million lines: 60,000 genes on 24 chromosomes, each a gene line and 1-8 transcripts
whose exons are drawn from the gene's exon slots with shifted splice sites (so exons of
different transcripts overlap without being identical), plus CDS, UTR and start/stop
codon lines and GENCODE's long attribute strings (versioned ids, ``_PAR_Y`` genes).
Then times, in the same run and each in a fresh subprocess:

- ``decompress-isal``: only decompress the file (the floor);
- ``pandas``: ``pandas.read_csv(comment="#")``, keep exons, ``str.extract`` the gene id,
  then ``groupby`` + a per-gene Python interval merge (what a curator writes);
- ``gseio``: ``gseio.genes.gene_table(path)``.

Usage::

    python benchmarks/bench_gtf.py                 # 60,000 genes
    python benchmarks/bench_gtf.py --genes 10000   # quicker
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _bench  # noqa: E402

_TYPES = ("protein_coding", "lncRNA", "processed_pseudogene", "misc_RNA", "snRNA")


def generate(folder: Path, n_genes: int, seed: int = 0) -> Path:
    import numpy as np
    from isal import igzip

    target = folder / f"gencode_like_{n_genes}.gtf.gz"
    if target.exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    part = target.with_suffix(".part")  # renamed when complete: an interrupted run is not a cache hit
    out = igzip.open(part, "wb", compresslevel=3)
    out.write(b"##description: GENCODE-like synthetic annotation for benchmarks\n##format: gtf\n")
    n_lines = 2
    tx_counter = exon_counter = 0
    for g in range(n_genes):
        chrom = f"chr{g % 24 + 1}" if g % 24 < 22 else ("chrX", "chrY")[g % 24 - 22]
        gid = f"ENSG{g:011d}.{rng.integers(1, 20)}" + ("_PAR_Y" if chrom == "chrY" and g % 5 == 0 else "")
        gtype = _TYPES[g % len(_TYPES)]
        strand = "+-"[g % 2]
        gene_attr = f'gene_id "{gid}"; gene_type "{gtype}"; gene_name "GENE{g}"; level 2; hgnc_id "HGNC:{g}";'
        # exon slots of the gene; transcripts take a run of slots with their own splice sites
        n_slots = int(rng.integers(3, 20))
        slot_len = rng.integers(60, 400, size=n_slots)
        gaps = rng.integers(200, 5000, size=n_slots)
        slot_start = 10_000 + g * 40_000 + np.cumsum(gaps) + np.concatenate([[0], np.cumsum(slot_len)[:-1]])
        gene_end = int(slot_start[-1] + slot_len[-1] + 50)
        tx_lines = []
        for t in range(int(rng.integers(1, 9))):
            tx_counter += 1
            tid = f"ENST{tx_counter:011d}.{t + 1}"
            first = int(rng.integers(0, n_slots // 3 + 1))
            last = int(rng.integers(max(first, 2 * n_slots // 3), n_slots))
            starts = slot_start[first : last + 1] + rng.integers(-30, 30, size=last - first + 1)
            ends = (
                slot_start[first : last + 1]
                + slot_len[first : last + 1]
                + rng.integers(-30, 30, size=last - first + 1)
            )
            tx_attr = (
                f'{gene_attr} transcript_id "{tid}"; transcript_type "{gtype}";'
                f' transcript_name "GENE{g}-{t}"; transcript_support_level "1";'
                f' tag "basic"; havana_gene "OTTHUMG{g:011d}.2";'
            )
            tx_lines.append(f"{chrom}\tHAVANA\ttranscript\t{starts[0]}\t{ends[-1]}\t.\t{strand}\t.\t{tx_attr}")
            for k, (s, e) in enumerate(zip(starts, ends, strict=True)):
                exon_counter += 1
                attr = f'{tx_attr} exon_number {k + 1}; exon_id "ENSE{exon_counter:011d}.1";'
                tx_lines.append(f"{chrom}\tHAVANA\texon\t{s}\t{e}\t.\t{strand}\t.\t{attr}")
                if gtype == "protein_coding" and 0 < k < len(starts) - 1:
                    tx_lines.append(f"{chrom}\tHAVANA\tCDS\t{s}\t{e}\t.\t{strand}\t0\t{attr}")
            if gtype == "protein_coding":
                for feature, pos in (("start_codon", starts[0]), ("stop_codon", ends[-1] - 2), ("UTR", starts[0])):
                    tx_lines.append(f"{chrom}\tHAVANA\t{feature}\t{pos}\t{pos + 2}\t.\t{strand}\t0\t{tx_attr}")
        gene_line = f"{chrom}\tHAVANA\tgene\t{slot_start[0] - 40}\t{gene_end}\t.\t{strand}\t.\t{gene_attr}"
        out.write(("\n".join([gene_line, *tx_lines]) + "\n").encode())
        n_lines += 1 + len(tx_lines)
    out.close()
    part.rename(target)
    print(f"generated {n_lines:,} lines, {target.stat().st_size / 2**20:.0f} MB gzipped")
    return target


def _pandas_baseline(path: Path):
    import pandas as pd

    gtf = pd.read_csv(path, sep="\t", comment="#", header=None, names=list(range(9)), dtype={0: str})
    exons = gtf[gtf[2] == "exon"]
    exons = exons.assign(gene_id=exons[8].str.extract(r'gene_id "([^"]+)"', expand=False))

    def union(group: pd.DataFrame) -> int:
        total, cur_s, cur_e = 0, None, None
        for s, e in sorted(zip(group[3], group[4], strict=True)):
            if cur_e is None or s > cur_e + 1:
                if cur_e is not None:
                    total += cur_e - cur_s + 1
                cur_s, cur_e = s, e
            else:
                cur_e = max(cur_e, e)
        return total + cur_e - cur_s + 1

    return exons.groupby("gene_id", sort=False)[[3, 4]].apply(union)


def run_method(method: str, path: Path) -> dict:
    t0 = time.perf_counter()
    if method == "decompress-isal":
        from isal import igzip

        result: dict = {"bytes": len(igzip.decompress(path.read_bytes()))}
    elif method == "pandas":
        lengths = _pandas_baseline(path)
        result = {"genes": len(lengths), "total_length": int(lengths.sum())}
    elif method == "gseio":
        from gseio.genes import gene_table

        table = gene_table(path)
        result = {"genes": len(table), "total_length": int(table["length"].sum())}
    else:
        raise SystemExit(f"unknown method {method}")
    result["seconds"] = time.perf_counter() - t0
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--genes", type=int, default=60_000)
    parser.add_argument("--repeats", type=int, default=3, help="repeats of the fast methods (median reported)")
    parser.add_argument("--pandas-repeats", type=int, default=1)
    parser.add_argument("--data", type=Path, default=HERE / ".data")
    parser.add_argument("--run", nargs=2, metavar=("METHOD", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        print(json.dumps(run_method(args.run[0], Path(args.run[1]))))
        return
    t0 = time.perf_counter()
    path = generate(args.data, args.genes)
    print(f"data: {path} (generated/cached in {time.perf_counter() - t0:.1f} s)")
    repeats = {"decompress-isal": args.repeats, "gseio": args.repeats, "pandas": args.pandas_repeats}
    rows = _bench.measure_all(__file__, path, repeats)
    _bench.same_result(rows, ("gseio", "pandas"), ("genes", "total_length"))
    _bench.print_table(rows, baseline="pandas", floor="decompress-isal", baseline_label="pandas")
    ratio = rows["pandas"]["seconds"] / rows["gseio"]["seconds"]
    print(f"\n{rows['gseio']['result']['genes']:,} genes; gseio is {ratio:.1f}x faster than the pandas baseline")


if __name__ == "__main__":
    main()
