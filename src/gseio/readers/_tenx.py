"""Helpers shared by the 10x Genomics family of readers (Matrix Market, HDF5, bustools).

Barcodes and features files, feature selection (cached across the samples of a series)
and the assembly of a triplet into a piece; the matrix itself is parsed in :mod:`._mtx`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .. import _open, _warn
from .._piece import GeneBlock, Piece, check_unique_cells
from ..errors import FormatError
from ..geo import gsm_accession
from . import _mtx, _names, _repeats
from ._decode import decode_names, report
from ._mtx import Csr

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._source import Source
    from .._unit import ReadOptions

#: The feature type Cell Ranger gives RNA features.
GENE_EXPRESSION = "Gene Expression"


def folder_accession(source: Source) -> str | None:
    """The GSM accession of the innermost folder (relative to the input) that starts with one."""
    parts = source.parent.split("/") if source.parent else []
    return next((gsm for part in reversed(parts) if (gsm := gsm_accession(part))), None)


def sample_name(prefix: str, source: Source) -> str:
    """The sample of a 10x triplet: the prefix's GSM accession, else the prefix, else the folder.

    The folder is its GSM accession when it has one, else the path relative to the input
    (unique across units), or the name of the folder given when the unit sits at the top.
    """
    stripped = prefix.rstrip("_.-")
    folder = source.parent or (source.path.stem if source.in_tar else source.path.parent.name)
    return gsm_accession(prefix) or stripped or folder_accession(source) or folder


def _split_lines(data: bytes) -> list[bytes]:
    """The lines of a small text file (barcodes, features), BOM, CRs and trailing blank lines removed."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines = data.split(b"\n")
    while lines and not lines[-1].strip():  # trailing blank lines are no barcodes or features
        lines.pop()
    return [line.rstrip(b"\r") for line in lines]


def _decode(values: list[bytes], source: Source, what: str) -> np.ndarray:
    """Line ``k + 1``'s names: UTF-8, else (per name, with a warning) Windows-1252."""
    names, recoded = decode_names(values)
    report(source, recoded, names, what=what)
    return names


def read_barcodes(source: Source) -> tuple[list[str], str | None]:
    """Cell barcodes: the first column of each line, each line one cell, no barcode twice.

    Returns the barcodes and a note when some were stripped of whitespace (see :mod:`._names`).

    Raises
    ------
    FormatError
        The file holds no barcodes, an empty line (a cell without a barcode), a barcode the
        platform cannot read back, or a barcode twice (which cell would its matrix column belong to?).
    """
    lines = _split_lines(_open.read_bytes(source))
    if not lines:
        raise FormatError("the barcodes file holds no barcodes", path=source)
    barcodes = _decode([line.split(b"\t", 1)[0] for line in lines], source, "barcodes").tolist()
    empty = next((i for i, barcode in enumerate(barcodes) if not barcode.strip()), None)
    if empty is not None:
        raise FormatError(f"line {empty + 1} holds no barcode (every line is one cell)", path=source)
    cleaned = _names.clean(barcodes, what="barcode", path=source, where=lambda k: f"line {k + 1}")
    barcodes = list(cleaned.names)
    check_unique_cells(barcodes, source, lambda k: f"line {k + 1}")
    return barcodes, cleaned.note


@dataclass(frozen=True, slots=True)
class Features:
    """A feature table: ids (the join key) and optional symbols, types and genomes."""

    ids: np.ndarray
    symbols: np.ndarray | None = None
    types: np.ndarray | None = None
    genomes: np.ndarray | None = None
    where: str = "line"  # a feature's place in the file, for messages: "line 5", "entry 5 of /matrix/..."

    def __len__(self) -> int:
        return len(self.ids)


def parse_features(data: bytes, source: Source) -> Features:
    """Parse ``features.tsv`` (id, symbol, type) or ``genes.tsv`` (id, symbol) or one id per line."""
    lines = _split_lines(data)
    if not lines:
        raise FormatError("the features file holds no features", path=source)
    rows = [line.split(b"\t") for line in lines]
    width = len(rows[0])
    ragged = next((i for i, r in enumerate(rows) if len(r) != width), None)
    if ragged is not None:
        raise FormatError(
            f"line {ragged + 1} has {len(rows[ragged])} tab-separated columns, line 1 has {width}", path=source
        )
    empty = next((i for i, r in enumerate(rows) if not r[0].strip()), None)
    if empty is not None:
        raise FormatError(f"line {empty + 1} has an empty feature id", path=source)
    what = ("feature ids", "feature names", "feature types")
    # ids keep their blanks: they are checked (and stripped, with a word) with the other names
    columns = [
        _decode([r[c] if c == 0 else r[c].strip() for r in rows], source, what[c]) for c in range(min(width, 3))
    ]
    return Features(
        ids=columns[0],
        symbols=columns[1] if width >= 2 else None,
        types=columns[2] if width >= 3 else None,
    )


@dataclass(frozen=True, slots=True)
class Selection:
    """The gene block of a piece and which feature rows it keeps (``None``: all, in order)."""

    block: GeneBlock
    keep: np.ndarray | None
    n_features: int
    note: str | None = None


def select_features(features: Features, options: ReadOptions, source: Source) -> Selection:
    """Apply ``gene_expression_only`` and the duplicate-id policy; build the gene block."""
    import pandas as pd

    rows = np.arange(len(features))
    notes = []
    if options.gene_expression_only and features.types is not None:
        rows = np.flatnonzero(features.types == GENE_EXPRESSION)
        if rows.size < len(features):
            notes.append(f"gene_expression_only: kept {rows.size} of {len(features)} features")
    ids = features.ids[rows]
    if features.symbols is not None and ids.size > 1 and len(set(ids)) == 1 and len(set(features.symbols)) > 1:
        # hand-made test data (Seurat's) carries one placeholder id on every row: the symbols are the names
        message = (f"every feature id is the same placeholder ({ids[0]!r}); the features are named by their "
                   "symbols (second column) instead")  # fmt: skip
        notes.append(message)
        _warn.warn(f"{source}: {message}")
        ids = features.symbols[rows]
    cleaned = _names.clean(ids, what="feature id", path=source, where=lambda k: _where(features, rows[k]))
    ids = cleaned.names
    if cleaned.note is not None:
        notes.append(cleaned.note)
    duplicated = pd.Index(ids).duplicated()
    n_dup = int(duplicated.sum())
    if n_dup:
        repeated = pd.unique(ids[duplicated])
        listed = ", ".join(map(str, repeated[:5])) + (", ..." if len(repeated) > 5 else "")
        if options.duplicate_genes == "error":
            raise FormatError(
                f"{n_dup} features repeat a feature name ({listed}); pass duplicate_genes='sum' or 'first'",
                path=source,
            )
        if options.duplicate_genes == "first":
            rows, ids = rows[~duplicated], ids[~duplicated]
        notes.append(f"{n_dup} features repeat an id ({listed}): duplicate_genes={options.duplicate_genes!r}")
    annotations = {}
    for column, values in (
        ("gene_symbols", features.symbols),
        ("feature_types", features.types),
        ("genome", features.genomes),
    ):
        if values is not None:
            annotations[column] = values[rows]
    block = GeneBlock.from_names(ids, n_duplicates=n_dup, annotations=annotations)
    keep = None if rows.size == len(features) else rows
    return Selection(block, keep, len(features), "; ".join(notes) or None)


def _where(features: Features, row: int) -> str:
    return f"{features.where} {row + 1}" if features.where == "line" else f"entry {row + 1} of {features.where}"


def cached_selection(
    data: bytes,
    options: ReadOptions,
    source: Source,
    parse: Callable[[bytes, Source], Features] = parse_features,
) -> Selection:
    """:func:`select_features` of a features file, remembered for identical bytes.

    The samples of a series share their features file byte for byte (or one series-level
    file serves them all), so its 36,601 names are decoded and digested once per build.
    """
    cache = options.cache
    if cache is None:
        return select_features(parse(data, source), options, source)
    import pyarrow as pa

    from ._gene_blocks import BlockInfo

    key = pa.array([data], type=pa.large_binary())
    policy = f"tenx:{options.duplicate_genes}:{options.gene_expression_only}:{parse.__name__}"
    info = cache.get(key, policy)
    if info is None:
        selection = select_features(parse(data, source), options, source)
        # BlockInfo's spare tuple carries what a Selection adds: the note and the feature count
        extra = (selection.note or "", str(selection.n_features))
        info = BlockInfo(selection.block, selection.keep, np.empty(0, np.int64), extra)
        cache.put(key, policy, info)
    note, n_features = info.special_names
    return Selection(info.block, info.keep, int(n_features), note or None)


def read_triplet(
    matrix: Source,
    barcodes_source: Source,
    features_source: Source,
    options: ReadOptions,
    *,
    default: str,
    parse: Callable[[bytes, Source], Features] = parse_features,
) -> list[Piece]:
    """Read a matrix with its barcodes and features files into one piece (cells x genes).

    ``default`` is the layout assumed when the dimensions cannot tell (a square matrix):
    ``"genes_by_cells"`` for Cell Ranger, ``"cells_by_genes"`` for bustools.
    """
    barcodes, stripped = read_barcodes(barcodes_source)
    selection = cached_selection(_open.read_bytes(features_source), options, features_source, parse=parse)
    triplets = _mtx.read_matrix_market(matrix)
    csr, layout = to_cells(
        triplets,
        n_barcodes=len(barcodes),
        n_features=selection.n_features,
        default=default,
        orientation=options.orientation,
        source=matrix,
        barcodes=barcodes_source,
        features=features_source,
    )
    del triplets
    notes = {"orientation": layout} | ({} if stripped is None else {"cell_names": stripped})
    return [make_piece(matrix, barcodes, csr, selection, notes)]


def make_piece(
    source: Source, barcodes: list[str], csr: Csr, selection: Selection, notes: dict[str, str]
) -> Piece:
    """The piece of one matrix: stored zeros dropped, features selected, notes recorded."""
    zeros = csr.data == 0
    if zeros.any():  # explicit zeros are legal Matrix Market but a Piece stores none
        csr.compact(~zeros)
    del zeros
    csr.select_features(selection.keep, selection.n_features)
    if selection.note:
        notes = {**notes, "features": selection.note}
    return Piece(
        source=str(source),
        cells=barcodes,
        genes=selection.block,
        indptr=csr.indptr,
        indices=csr.indices,
        data=csr.data,
        notes=notes,
    )


def to_cells(
    triplets: _mtx.Triplets,
    *,
    n_barcodes: int,
    n_features: int,
    default: str,
    orientation: str,
    source: Source,
    barcodes: Source,
    features: Source,
) -> tuple[Csr, str]:
    """Orient the triplets as cells x features from the barcode and feature counts.

    ``default`` (``"genes_by_cells"`` for 10x, ``"cells_by_genes"`` for bustools) settles a
    square matrix with as many barcodes as features; ``orientation`` other than ``"auto"``
    forces a layout. Returns the CSR arrays and the decision, for :attr:`Piece.notes`.
    """
    shape = triplets.shape
    fits = {
        "genes_by_cells": shape == (n_features, n_barcodes),
        "cells_by_genes": shape == (n_barcodes, n_features),
    }
    if orientation != "auto":
        layout, why = orientation, "as requested (orientation=)"
        if not fits[layout]:
            raise FormatError(
                _mismatch(shape, n_barcodes, n_features, barcodes, features, forced=layout), path=source
            )
    elif fits["genes_by_cells"] and fits["cells_by_genes"]:
        layout = default
        why = f"square, as many barcodes as features: the format's usual {default.replace('_by_', ' x ')}"
    elif fits["genes_by_cells"] or fits["cells_by_genes"]:
        layout = "genes_by_cells" if fits["genes_by_cells"] else "cells_by_genes"
        why = f"{shape[0]} x {shape[1]} matches {n_barcodes} barcodes and {n_features} features"
    else:
        raise FormatError(_mismatch(shape, n_barcodes, n_features, barcodes, features), path=source)
    cells = 1 if layout == "genes_by_cells" else 0
    features_index = triplets.entries(1 - cells)
    if (counts := triplets.counts[cells]) is not None:  # the cells came in order: their counts are the rows
        indptr = np.zeros(n_barcodes + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        csr = Csr(indptr, features_index.astype(np.int32, copy=False), triplets.data)
    else:
        csr = _mtx.coo_to_csr(triplets.entries(cells), features_index, triplets.data, n_barcodes)
    if (repeat := _repeats.first_repeat(csr.indptr, csr.indices, n_features)) is not None:
        raise FormatError(_repeated(triplets, cells, *repeat), path=source)
    return csr, f"{layout.replace('_by_', ' x ')}: {why}"


def _repeated(triplets: _mtx.Triplets, cells: int, cell: int, feature: int) -> str:
    """Describe the two entries of ``(cell, feature)``: the first coordinate the matrix gives twice."""
    coordinate = [feature, cell] if cells == 1 else [cell, feature]
    hits = np.flatnonzero((triplets.entries(0) == coordinate[0]) & (triplets.entries(1) == coordinate[1]))
    first, second = (int(k) for k in hits[:2])
    line = triplets.first_line

    def entry(k: int) -> str:
        return f"entry {k + 1}" + ("" if line is None else f" (line {line + k})")

    return (
        f"{entry(second)} repeats {entry(first)}: row {coordinate[0] + 1}, column {coordinate[1] + 1} is given "
        f"twice. {_repeats.ADVICE}{_repeats.SUM_MTX}"
    )


def _mismatch(
    shape: tuple[int, int],
    n_barcodes: int,
    n_features: int,
    barcodes: Source,
    features: Source,
    forced: str | None = None,
) -> str:
    wanted = f"it cannot be read as {forced.replace('_by_', ' x ')}" if forced else "neither way fits"
    return (
        f"the matrix is {shape[0]} x {shape[1]} but {barcodes.name} has {n_barcodes} barcodes and "
        f"{features.name} has {n_features} features: {wanted}. Check that the three files belong together"
    )
