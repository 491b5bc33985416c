"""A small, realistic GEO-style folder of per-cell Smart-seq2 count files, made on the spot.

No download: the demo data are generated from a fixed seed. The folder looks like an
extracted ``GSE..._RAW.tar`` of a plate-based study: one gzipped count table per cell,
each named after its own GSM accession (``GSM5000001_P1_A01.counts.txt.gz``); some
files have a header line naming the cell, others do not; the third plate was
quantified with htseq-count against a different annotation, so its files list a
different set of genes in a different order and end with htseq's ``__`` counters;
a ``filelist.txt`` sits beside them as in real downloads. Three cell types with
distinct marker programmes make a clustering run find structure.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

__all__ = ["make_demo"]

_MARKER = ".gseio-demo"  # lists the files a demo wrote, so running the demo again can replace them
_HTSEQ_COUNTERS = (
    "__no_feature",
    "__ambiguous",
    "__too_low_aQual",
    "__not_aligned",
    "__alignment_not_unique",
)


def _gene_names(n_genes: int) -> list[str]:
    genes = [f"ENSG{10_000_000 + 37 * i:011d}" for i in range(n_genes - 20)]
    return genes + [f"ERCC-{2 + 3 * i:05d}" for i in range(20)]


def _counts(rng: np.random.Generator, n_cells: int, n_genes: int, n_types: int) -> tuple[np.ndarray, np.ndarray]:
    """Negative-binomial counts with cell-type marker programmes; returns (counts, type)."""
    base = rng.lognormal(mean=-1.0, sigma=2.2, size=n_genes)
    cell_type = np.arange(n_cells) % n_types
    means = np.tile(base, (n_cells, 1))
    markers = rng.permutation(n_genes - 20)[: 60 * n_types].reshape(n_types, 60)
    for t in range(n_types):
        means[np.ix_(cell_type == t, markers[t])] *= rng.uniform(8, 30, size=60)
    library = rng.lognormal(mean=0.0, sigma=0.35, size=(n_cells, 1))
    means = means / means.sum(axis=1, keepdims=True) * 4e4 * library
    dispersion = 0.6
    counts = rng.negative_binomial(1 / dispersion, 1 / (1 + means * dispersion))
    return counts, cell_type


def make_demo(
    path: str | os.PathLike[str],
    *,
    n_plates: int = 3,
    cells_per_plate: int = 48,
    n_genes: int = 2000,
    seed: int = 0,
) -> Path:
    """Write the demo series folder.

    Parameters
    ----------
    path
        The folder to create. It must not exist, be empty, or hold an earlier demo
        (which is then replaced).
    n_plates, cells_per_plate
        Layout: one GSM (and one file) per cell, ``n_plates * cells_per_plate`` cells.
    n_genes
        Genes in the main annotation (20 of them ERCC spike-ins).
    seed
        Random seed; the same arguments always give the same files.

    Returns
    -------
    The folder.
    """
    path = Path(path)
    marker = path / _MARKER
    if path.exists() and any(path.iterdir()):
        if not marker.is_file():
            raise FileExistsError(f"{path} exists, is not empty and is not a gseio demo folder")
        for old in marker.read_text(encoding="utf-8").split():  # an earlier demo: regenerate it
            (path / old).unlink(missing_ok=True)
    path.mkdir(parents=True, exist_ok=True)
    written = []
    rng = np.random.default_rng(seed)
    n_cells = n_plates * cells_per_plate
    genes = _gene_names(n_genes)
    counts, _ = _counts(rng, n_cells, n_genes, n_types=3)
    # the last plate's annotation: 5% of genes missing, 40 extra ones, another order
    other = [g for g in genes if rng.random() > 0.05] + [f"ENSG{90_000_000 + i:011d}" for i in range(40)]
    other_order = rng.permutation(len(other))
    position = {g: i for i, g in enumerate(genes)}
    filelist = ["#Archive/File\tName\tTime\tSize\tType"]
    wells = [f"{r}{c:02d}" for r in "ABCDEFGH" for c in range(1, 13)]
    for cell in range(n_cells):
        plate, well = divmod(cell, cells_per_plate)
        name = f"P{plate + 1}_{wells[well % len(wells)]}"
        gsm = f"GSM{5_000_001 + cell}"
        htseq = plate == n_plates - 1
        if htseq:
            rows = [other[i] for i in other_order]
            values = [int(counts[cell, position[g]]) if g in position else int(rng.poisson(3)) for g in rows]
            lines = [f"{g}\t{v}" for g, v in zip(rows, values, strict=True)]
            lines += [f"{c}\t{int(rng.integers(1000, 50000))}" for c in _HTSEQ_COUNTERS]
        else:
            lines = [f"{g}\t{int(v)}" for g, v in zip(genes, counts[cell], strict=True)]
            if cell % 2 == 0:  # half the files name their cell in a header line
                lines.insert(0, f"gene_id\t{name}")
        file_name = f"{gsm}_{name}.counts.txt.gz"
        with gzip.open(path / file_name, "wt", encoding="utf-8", newline="\n", compresslevel=6) as fh:
            fh.write("\n".join(lines) + "\n")
        written.append(file_name)
        filelist.append(f"{file_name}\t{file_name}\t01/01/2024\t{(path / file_name).stat().st_size}\tGZ")
    (path / "filelist.txt").write_text("\n".join(filelist) + "\n", encoding="utf-8")
    marker.write_text("\n".join([*written, "filelist.txt", _MARKER]) + "\n", encoding="utf-8")
    return path
