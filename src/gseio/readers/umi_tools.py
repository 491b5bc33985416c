r"""UMI-tools ``count`` / ``count_tab`` output with one line per (gene, cell) pair.

``umi_tools count --per-cell`` writes a long table with the header ``gene\\tcell\\tcount``;
``count_tab --per-cell`` writes ``cell\\tgene\\tcount``. Either exact header is the
format's signature (score 1.0). Pairs absent from the file are zeros.

``--wide-format-cell-counts`` writes ``gene\\t<cell>\\t<cell>...``: nothing in it tells
it from any other wide table with a ``gene`` corner (the GEO tables of
``wide_matrix/gemma`` start the same way), so detection leaves it to ``wide_table``,
which reads it the same way (genes x cells). :func:`read_umi_tools` reads both layouts.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

import numpy as np

from .. import _open
from .._options import DType, DuplicateGenes
from .._piece import GeneBlock, Piece, check_counts
from .._registry import FormatSpec, register_format
from .._source import Source
from .._unit import ReadOptions, Unit
from ..errors import FormatError, InvalidValueError
from . import _names
from ._lines import find_unparsable
from ._table import Layout, decode_column, find_layout, ragged_row
from .wide_table import read_table_piece

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["read_umi_tools", "read_unit", "sniff"]

_LONG_HEADER = re.compile(rb"^(\xef\xbb\xbf)?(gene\tcell|cell\tgene)\tcount\r?$")


def sniff(head: bytes, source: Source) -> float:
    """1.0 for the long layout's exact header line; the wide layout is left to ``wide_table``."""
    return 1.0 if _LONG_HEADER.match(head.split(b"\n", 1)[0]) else 0.0


def _long_piece(layout: Layout, gene_first: bool, source: Source, options: ReadOptions) -> Piece:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.csv as pacsv
    from scipy import sparse

    names = ["gene", "cell", "count"] if gene_first else ["cell", "gene", "count"]

    def read(count_type: pa.DataType) -> pa.Table:
        return pacsv.read_csv(
            pa.BufferReader(layout.body),
            read_options=pacsv.ReadOptions(column_names=names),
            parse_options=pacsv.ParseOptions(delimiter="\t"),
            convert_options=pacsv.ConvertOptions(
                column_types={"gene": pa.binary(), "cell": pa.binary(), "count": count_type}
            ),
        )

    def where(i: int) -> str:
        return f"line {layout.line(i)} (gene {genes[i]!r}, cell {cells[i]!r})"

    try:
        table = read(pa.float64())
    except pa.ArrowInvalid as e:
        if "conversion error" not in str(e):
            raise FormatError(ragged_row(layout, 3) or f"not a gene/cell/count table: {e}", path=source) from e
        table = read(pa.binary())
        genes, cells = decode_column(table.column("gene")), decode_column(table.column("cell"))
        raw = table.column("count").to_pylist()
        found = find_unparsable(str(e), {2: raw})
        if found is None:  # pragma: no cover - Arrow refused a value the number pattern accepts
            raise InvalidValueError(f"a count is not a number: {e}", path=source) from e
        i = found[1]
        value = raw[i].decode("utf-8", "replace")
        raise InvalidValueError(f"{where(i)}: count {value!r} is not a number", path=source) from e
    genes = decode_column(table.column("gene"), path=source, line=layout.line, what="gene names")
    cells = decode_column(table.column("cell"), path=source, line=layout.line, what="cell names")
    count_col = table.column("count").combine_chunks()
    if count_col.null_count:
        i = int(np.flatnonzero(count_col.is_null().to_numpy(zero_copy_only=False))[0])
        raise InvalidValueError(f"{where(i)}: the count is missing or NaN", path=source)
    counts = count_col.to_numpy()
    check_counts(counts, source, where)
    empty = np.flatnonzero((genes == "") | (cells == ""))
    if empty.size:
        raise FormatError(f"line {layout.line(int(empty[0]))} has an empty gene or cell", path=source)
    notes = {"layout": f"UMI-tools long format ({'gene, cell' if gene_first else 'cell, gene'}, count)"}
    gene_codes, genes = _clean_codes(*pd.factorize(genes), "gene name", "gene_names", layout, source, notes)
    cell_codes, cells = _clean_codes(*pd.factorize(cells), "cell id", "cell_names", layout, source, notes)
    pairs = pd.Index(cell_codes.astype(np.int64) * len(genes) + gene_codes)
    n_dup = int(pairs.duplicated().sum())
    if n_dup and options.duplicate_genes == "error":
        raise FormatError(
            f"{n_dup} (gene, cell) pairs are repeated; pass duplicate_genes='sum' or 'first'", path=source
        )
    if n_dup and options.duplicate_genes == "first":
        first = ~pairs.duplicated()
        counts, gene_codes, cell_codes = counts[first], gene_codes[first], cell_codes[first]
    # coo -> csr sums repeated pairs (duplicate_genes="sum")
    matrix = sparse.csr_matrix((counts, (cell_codes, gene_codes)), shape=(len(cells), len(genes)))
    matrix.eliminate_zeros()
    matrix.sort_indices()
    return Piece(
        source=str(source),
        cells=[str(c) for c in cells],
        genes=GeneBlock.from_names(np.asarray(genes, dtype=object), n_duplicates=n_dup),
        indptr=matrix.indptr.astype(np.int64),
        indices=matrix.indices.astype(np.int32),
        data=matrix.data.astype(np.float64),
        notes=notes,
    )


def _clean_codes(
    codes: np.ndarray, names: object, what: str, key: str, layout: Layout, source: Source, notes: dict[str, str]
) -> tuple[np.ndarray, np.ndarray]:
    """Check the distinct names of a long table's column (each at the line it first appears on).

    Names equal once stripped of whitespace get one code, so their pairs count as repeated.
    """
    import pandas as pd

    def where(k: int) -> str:
        return f"line {layout.line(int(np.argmax(codes == k)))}"

    cleaned = _names.clean(np.asarray(names, dtype=object), what=what, path=source, where=where)
    if cleaned.note is None:
        return codes, cleaned.names
    cleaned.into(notes, key)
    merged, names = pd.factorize(cleaned.names)
    return merged[codes], np.asarray(names, dtype=object)


def read_unit(unit: Unit, options: ReadOptions) -> list[Piece]:
    """Parse a UMI-tools count table (long or wide layout) into a piece."""
    source = unit.main
    data = _open.read_bytes(source)
    layout = find_layout(data, source, quiet=True)  # the wide layout's reader reports its header
    header = [h.strip().lower() for h in layout.header]
    if header in (["gene", "cell", "count"], ["cell", "gene", "count"]):
        return [_long_piece(layout, header[0] == "gene", source, options)]
    if header[:1] != ["gene"]:
        raise FormatError(
            f"not UMI-tools count output: the header must be 'gene<TAB>cell<TAB>count', 'cell<TAB>gene<TAB>count' "
            f"or 'gene<TAB><cells>', not {'<TAB>'.join(layout.header)[:80]!r}",
            path=source,
        )
    notes = {"orientation": "genes x cells: UMI-tools --wide-format-cell-counts layout"}
    return [read_table_piece(data, source, options, orientation="genes_by_cells", notes=notes)]


def read_umi_tools(
    path: str | os.PathLike[str], *, duplicate_genes: DuplicateGenes = "sum", dtype: DType = "auto"
) -> AnnData:
    """Read UMI-tools ``count``/``count_tab`` per-cell output into an AnnData.

    Parameters
    ----------
    path
        The long (``gene cell count``) or wide (``--wide-format-cell-counts``) table.
    duplicate_genes
        A repeated (gene, cell) pair or gene row: ``"sum"`` (default), ``"first"`` or ``"error"``.
    dtype
        ``"auto"``, ``"float32"`` or ``"float64"``; see :func:`gseio.read_gse_dir`.

    Returns
    -------
    AnnData, cells x genes in first-seen order, ``X`` CSR without stored zeros.

    Raises
    ------
    ~gseio.errors.InputError
        Another header, ragged rows, a cell given twice in the wide layout's header, or a
        missing, non-numeric, negative or infinite count (the message gives the line).
    """
    from ..assemble import read

    return read(path, format="umi_tools", duplicate_genes=duplicate_genes, dtype=dtype)


register_format(
    FormatSpec(name="umi_tools", description="UMI-tools count output (gene, cell, count)", sniff=sniff,
               read_unit=read_unit)
)  # fmt: skip
