r"""GCT 1.2 expression tables (Broad): RNA-SeQC's ``*.gene_reads.gct``, GenePattern, GTEx.

Line 1 is ``#1.2``, line 2 the dimensions (``<genes>\\t<samples>``), line 3 the header
``Name  Description  <samples...>``. ``Name`` is the gene id (the join key),
``Description`` (usually the gene symbol) goes to ``var["gene_symbols"]``. The dimension
line is checked against the table, which catches truncated downloads. Values are
counts unless the file name or header says TPM/FPKM/RPKM/CPM/normalized
(RNA-SeQC's ``gene_tpm.gct``). GCT 1.3 (with row/column metadata blocks) is not read.
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
from ..errors import FormatError
from .wide_table import read_table_piece

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["read_gct", "read_unit", "sniff"]

_SIGNATURE = re.compile(rb"^(\xef\xbb\xbf)?#1\.2[ \t]*\r?\n[ \t]*\d+[ \t]+\d+")
_DIMENSIONS = re.compile(rb"^\s*(\d+)\s+(\d+)\s*$")
_HEAD_BYTES = 1 << 16


def sniff(head: bytes, source: Source) -> float:
    """1.0 when the file starts with the GCT 1.2 version and dimension lines."""
    return 1.0 if _SIGNATURE.match(head[:256]) else 0.0


def read_unit(unit: Unit, options: ReadOptions) -> list[Piece]:
    """Parse one GCT 1.2 file (genes x samples) into a piece."""
    source = unit.main
    head = _open.read_bytes(source, limit=_HEAD_BYTES) or _open.read_bytes(
        source
    )  # empty: EmptyFileError  # the version and dimension lines; the table streams
    lines = head.split(b"\n", 2)
    if len(lines) < 3 or not lines[0].lstrip(b"\xef\xbb\xbf").startswith(b"#1.2"):
        raise FormatError("not a GCT 1.2 file: the first line must be '#1.2'", path=source)
    dims = _DIMENSIONS.match(lines[1])
    if dims is None:
        raise FormatError(f"line 2 must give '<rows>\\t<columns>', not {lines[1][:60]!r}", path=source)
    n_rows, n_columns = int(dims.group(1)), int(dims.group(2))
    notes = {"orientation": "genes x cells: the GCT layout (Name, Description, then one column per sample)"}
    piece = read_table_piece(None, source, options, orientation="genes_by_cells", skip_lines=2, notes=notes)
    n_genes = len(piece.genes.names) + piece.genes.n_duplicates * (options.duplicate_genes == "first")
    found = (n_genes + len(piece.obs), piece.n_cells)
    if found != (n_rows, n_columns):
        raise FormatError(
            f"the dimension line says {n_rows} rows x {n_columns} samples; the table has {found[0]} x {found[1]} "
            "(a truncated or edited file?)",
            path=source,
        )
    return [piece]


def read_gct(
    path: str | os.PathLike[str], *, duplicate_genes: DuplicateGenes = "sum", dtype: DType = "auto"
) -> AnnData:
    """Read a GCT 1.2 file into an AnnData.

    Parameters
    ----------
    path
        The ``.gct`` file, plain or compressed.
    duplicate_genes
        A repeated ``Name``: ``"sum"`` (default), keep the ``"first"``, or ``"error"``.
    dtype
        ``"auto"``, ``"float32"`` or ``"float64"``; see :func:`gseio.read_gse_dir`.

    Returns
    -------
    AnnData, samples x genes (``Name``), ``var["gene_symbols"]`` from ``Description``.

    Raises
    ------
    ~gseio.errors.InputError
        A bad version or dimension line, dimensions that disagree with the table, a sample
        name given twice, or a missing, non-numeric, negative or infinite value.
    """
    from ..assemble import read

    return read(path, format="gct", duplicate_genes=duplicate_genes, dtype=dtype)


register_format(
    FormatSpec(name="gct", description="GCT 1.2 expression table (RNA-SeQC, GenePattern)", sniff=sniff,
               read_unit=read_unit)
)  # fmt: skip
