"""What a table's row and column labels look like: genes, or cells (barcodes, wells, samples).

Wide tables come in both orientations on GEO and rarely say which; the labels do. Each
label is put in one *kind*; strong kinds (an Ensembl id, a barcode) decide the
orientation, gene-symbol-like labels are weak evidence (``untreated1`` and ``V1`` look
like symbols too), and a table whose labels decide nothing is read genes x cells, the
usual GEO layout, with a note that says so.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["CELL_KINDS", "GENE_KINDS", "Orientation", "classify", "decide_orientation", "label_kind"]

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("ensembl", re.compile(r"^ENS[A-Z]*[GT]\d{6,}(\.\d+)?(_PAR_Y)?$", re.IGNORECASE)),
    ("ercc", re.compile(r"^ERCC-\d{5}$", re.IGNORECASE)),
    # FlyBase, WormBase, yeast systematic names, RefSeq, Entrez-style "gene:" ids
    ("gene_id", re.compile(r"^(FBgn\d{7}|WBGene\d{8}|Y[A-P][LR]\d{3}[WC](-[A-Z])?|[NX][MR]_\d+(\.\d+)?)$")),
    ("htseq_special", re.compile(r"^__[a-z_]+$")),
    ("sample", re.compile(r"^(GSM|SRR|ERR|DRR|SRX|ERX|DRX|SRS|SAMN|SAMEA|SAMD)\d{3,}([_.-].*)?$")),
    # cell barcodes: a bare ACGT k-mer, optionally with a 10x-style -1 suffix or a sample prefix
    ("barcode", re.compile(r"^([A-Za-z0-9]+[_:#.-])?[ACGTN]{6,20}(-\d+)?([_.-]\d+)?$")),
    # plate wells, alone or inside a cell name: A01, H12, LM2_G15, plate3.P24
    ("well", re.compile(r"(^|[_.:-])[A-Pa-p](0?[1-9]|1\d|2[0-4])($|[_.:-])")),
    # symbols are weak evidence only: "untreated1" and "V1" look like symbols too
    ("symbol", re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9][A-Za-z0-9_.()@/:-]*$")),
)
GENE_KINDS = frozenset({"ensembl", "ercc", "gene_id", "htseq_special"})
CELL_KINDS = frozenset({"sample", "barcode", "well"})
#: Header words naming the label column, which say what the rows are.
GENE_HEADERS = frozenset(
    {"gene", "genes", "gene_id", "geneid", "gene_ids", "gene_name", "gene_symbol", "symbol", "feature", "features",
     "feature_id", "id", "ensembl", "ensembl_id", "ensembl_gene_id", "name", "target_id", "genename"}
)  # fmt: skip
CELL_HEADERS = frozenset({"cell", "cells", "cell_id", "cellid", "barcode", "barcodes", "cell_barcode", "sample"})


def label_kind(label: str) -> str:
    """The kind of one label: a gene kind, a cell kind, ``"symbol"`` or ``"other"``."""
    label = label.strip()
    for kind, pattern in _PATTERNS:
        if pattern.search(label) if kind == "well" else pattern.match(label):
            # a well needs more than a bare symbol-like word: "F2" is a gene and a well
            if kind == "well" and len(label) <= 3 and label[1:2] != "0":
                continue
            return kind
    return "other"


def classify(labels: Iterable[str], *, limit: int = 5000) -> tuple[int, Counter[str]]:
    """Count label kinds over at most ``limit`` labels spread across the list."""
    labels = list(labels)
    if len(labels) > limit:
        step = len(labels) / limit
        labels = [labels[int(i * step)] for i in range(limit)]
    return len(labels), Counter(label_kind(str(label)) for label in labels)


@dataclass(frozen=True, slots=True)
class Orientation:
    """Which axis holds genes, and why."""

    genes_by_cells: bool
    note: str


def _describe(axis: str, n: int, kinds: Counter[str]) -> str:
    gene = sum(kinds[k] for k in GENE_KINDS)
    cell = sum(kinds[k] for k in CELL_KINDS)
    if gene >= cell and gene:
        top = ", ".join(k for k, _ in kinds.most_common() if k in GENE_KINDS)
        return f"{gene:,} of {n:,} {axis} labels look like genes ({top})"
    if cell:
        top = ", ".join(k for k, _ in kinds.most_common() if k in CELL_KINDS)
        return f"{cell:,} of {n:,} {axis} labels look like cells ({top})"
    if kinds["symbol"]:
        return f"{kinds['symbol']:,} of {n:,} {axis} labels look like gene symbols"
    return f"none of {n:,} {axis} labels looks like a gene or a cell"


def decide_orientation(
    row_labels: Sequence[str], column_labels: Sequence[str], *, corner: str = ""
) -> Orientation:
    """Decide whether a table is genes x cells (rows are genes) from its labels.

    Parameters
    ----------
    row_labels
        The first column (one label per data row).
    column_labels
        The headers of the value columns.
    corner
        The header of the label column (``gene``, ``cell``...), a hint when labels decide nothing.

    Returns
    -------
    The decision and a one-line reason for ``Piece.notes``.
    """
    n_rows, rows = classify(row_labels)
    n_cols, cols = classify(column_labels)
    share = {
        ("row", "gene"): sum(rows[k] for k in GENE_KINDS) / max(n_rows, 1),
        ("row", "cell"): sum(rows[k] for k in CELL_KINDS) / max(n_rows, 1),
        ("col", "gene"): sum(cols[k] for k in GENE_KINDS) / max(n_cols, 1),
        ("col", "cell"): sum(cols[k] for k in CELL_KINDS) / max(n_cols, 1),
    }
    why = f"{_describe('row', n_rows, rows)}; {_describe('column', n_cols, cols)}"
    # strong evidence: one axis is mostly gene ids or mostly cell ids, and the other is not alike
    genes_rows = share["row", "gene"] + share["col", "cell"]
    genes_cols = share["col", "gene"] + share["row", "cell"]
    if max(genes_rows, genes_cols) >= 0.5 and abs(genes_rows - genes_cols) >= 0.25:
        return Orientation(genes_rows > genes_cols, f"{_word(genes_rows > genes_cols)}: {why}")
    head = corner.strip().lower()
    if head in GENE_HEADERS or head in CELL_HEADERS:
        genes_by_cells = head in GENE_HEADERS
        return Orientation(genes_by_cells, f"{_word(genes_by_cells)}: the label column is named {corner!r}; {why}")
    symbol_rows, symbol_cols = rows["symbol"] / max(n_rows, 1), cols["symbol"] / max(n_cols, 1)
    if symbol_cols >= 0.8 and symbol_rows < 0.2:
        return Orientation(False, f"{_word(False)}: {why}")
    return Orientation(True, f"{_word(True)} (the default; labels decide nothing): {why}")


def _word(genes_by_cells: bool) -> str:
    return "genes x cells" if genes_by_cells else "cells x genes"
