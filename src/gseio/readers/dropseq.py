"""Drop-seq digital gene expression (DGE) tables, written by Drop-seq tools' ``DigitalExpression``.

A wide genes x cells table: ``GENE`` then one column per cell barcode, preceded by
header lines that are the format's signature: ``#DGE VERSION:1.1 EXPRESSION_FORMAT:raw``,
``#LIBRARY ...``, ``#COMMAND ...`` (current releases) or the same with ``@`` (older
releases). ``EXPRESSION_FORMAT`` other than ``raw`` marks the values as normalised.
Without those lines a DGE file is an ordinary wide table, read by ``wide_table``.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from .. import _open
from .._options import DType, DuplicateGenes
from .._piece import Piece
from .._registry import FormatSpec, register_format
from .._source import Source
from .._unit import ReadOptions, Unit
from .wide_table import read_table_piece

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["read_dropseq", "read_unit", "sniff"]

_SIGNATURE = re.compile(rb"^(\xef\xbb\xbf)?\s*[#@]DGE\b")
_EXPRESSION_FORMAT = re.compile(r"EXPRESSION_FORMAT:(\S+)")


def sniff(head: bytes, source: Source) -> float:
    """1.0 when the file starts with Drop-seq's ``#DGE``/``@DGE`` line."""
    return 1.0 if _SIGNATURE.match(head[:256]) else 0.0


def read_unit(unit: Unit, options: ReadOptions) -> list[Piece]:
    """Parse one DGE file (genes x cells, always) into a piece."""
    source = unit.main
    head = _open.read_bytes(source, limit=1 << 16) or _open.read_bytes(
        source
    )  # empty: EmptyFileError  # the #DGE line; the table streams
    first = head.split(b"\n", 1)[0].decode("utf-8", "replace")
    match = _EXPRESSION_FORMAT.search(first)
    expression = match.group(1) if match else "raw"
    notes = {
        "orientation": "genes x cells: the Drop-seq DGE layout",
        "dropseq": first.lstrip("\ufeff#@").strip().replace("\t", " "),
    }
    values = "counts" if expression.lower() == "raw" else "normalized"
    piece = read_table_piece(
        None, source, options, orientation="genes_by_cells", comment=(b"#", b"@"), values=values, notes=notes
    )
    return [piece]


def read_dropseq(
    path: str | os.PathLike[str], *, duplicate_genes: DuplicateGenes = "sum", dtype: DType = "auto"
) -> AnnData:
    """Read a Drop-seq DGE table (``*.digital_expression.txt.gz``) into an AnnData.

    Parameters
    ----------
    path
        The DGE file, plain or compressed.
    duplicate_genes
        A repeated gene: ``"sum"`` (default), keep the ``"first"``, or ``"error"``.
    dtype
        ``"auto"``, ``"float32"`` or ``"float64"``; see :func:`gseio.read_gse_dir`.

    Returns
    -------
    AnnData, cells (barcodes) x genes, ``X`` CSR without stored zeros; ``obs`` holds
    ``sample``, ``source_file`` and ``cell`` (the barcode).

    Raises
    ------
    ~gseio.errors.InputError
        Ragged rows, a header/body width mismatch, a barcode given twice, or a missing,
        non-numeric, negative or infinite value.
    """
    from ..assemble import read

    return read(path, format="dropseq", duplicate_genes=duplicate_genes, dtype=dtype)


register_format(
    FormatSpec(name="dropseq", description="Drop-seq tools DGE table (#DGE header), genes x cells", sniff=sniff,
               read_unit=read_unit)
)  # fmt: skip
