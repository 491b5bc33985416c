"""Helpers shared by the 10x Genomics family of readers (Matrix Market, HDF5, bustools).

Matrix Market bodies are parsed by fast_matrix_market (bundled with scipy >= 1.12):
its C++ parser runs on several threads and reads the decompressed stream in chunks,
so the text of a matrix (often 100 MB per sample) is never held whole in memory; the
triplets land directly in int32/float64 arrays sized from the header's entry count.
Cell Ranger writes entries sorted by cell, so the CSR row pointers come out of a
binary search per cell, without a sort.
"""

from __future__ import annotations

import io
import mmap
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .. import _open
from .._piece import GeneBlock, Piece
from ..errors import CorruptFileError, FormatError, InvalidValueError
from ..geo import gsm_accession

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
    """The lines of a small text file (barcodes, features), BOM, CRs and a final blank line removed."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines = data.split(b"\n")
    if lines and not lines[-1].strip():
        lines.pop()
    return [line.rstrip(b"\r") for line in lines]


def _decode(values: list[bytes]) -> np.ndarray:
    try:
        return np.array([v.decode("utf-8") for v in values], dtype=object)
    except UnicodeDecodeError:  # Latin-1 files exist; decoding them as such loses nothing
        return np.array([v.decode("latin-1") for v in values], dtype=object)


def read_barcodes(source: Source) -> list[str]:
    """Cell barcodes: the first column of each line."""
    lines = _split_lines(_open.read_bytes(source))
    if not lines:
        raise FormatError("the barcodes file holds no barcodes", path=source)
    return _decode([line.split(b"\t", 1)[0].strip() for line in lines]).tolist()


@dataclass(frozen=True, slots=True)
class Features:
    """A feature table: ids (the join key) and optional symbols, types and genomes."""

    ids: np.ndarray
    symbols: np.ndarray | None = None
    types: np.ndarray | None = None
    genomes: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)


def parse_features(data: bytes, source: Source) -> Features:
    """Parse ``features.tsv`` (id, symbol, type) or ``genes.tsv`` (id, symbol) or one id per line."""
    lines = _split_lines(data)
    if not lines:
        raise FormatError("the features file holds no features", path=source)
    rows = [line.split(b"\t") for line in lines]
    width = min(len(r) for r in rows)
    empty = next((i for i, r in enumerate(rows) if not r[0].strip()), None)
    if empty is not None:
        raise FormatError(f"line {empty + 1} has an empty feature id", path=source)
    columns = [_decode([r[c].strip() for r in rows]) for c in range(min(width, 3))]
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
    duplicated = pd.Index(ids).duplicated()
    n_dup = int(duplicated.sum())
    if n_dup:
        repeated = pd.unique(ids[duplicated])
        listed = ", ".join(map(str, repeated[:5])) + (", ..." if len(repeated) > 5 else "")
        if options.duplicate_genes == "error":
            raise FormatError(
                f"{n_dup} features repeat a feature id ({listed}); pass duplicate_genes='sum' or 'first'",
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


@dataclass(slots=True)
class Csr:
    """CSR arrays of cells x local features."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray

    def compact(self, mask: np.ndarray) -> None:
        """Keep only the entries where ``mask`` is true."""
        kept = np.zeros(mask.size + 1, dtype=np.int64)
        np.cumsum(mask, out=kept[1:])
        self.indptr = kept[self.indptr]
        self.indices = self.indices[mask]
        self.data = self.data[mask]

    def select_features(self, keep: np.ndarray | None, n_features: int) -> None:
        """Keep the features ``keep`` (in that order), renumbering the indices."""
        if keep is None:
            return
        remap = np.full(n_features, -1, dtype=np.int32)
        remap[keep] = np.arange(keep.size, dtype=np.int32)
        self.indices = remap[self.indices]
        self.compact(self.indices >= 0)


def coo_to_csr(cells: np.ndarray, features: np.ndarray, data: np.ndarray, n_cells: int) -> Csr:
    """CSR rows from triplets; no sort when the cells come in order (as Cell Ranger writes them)."""
    if cells.size > 1 and not bool(np.all(cells[1:] >= cells[:-1])):
        order = np.argsort(cells, kind="stable")
        cells, features, data = cells[order], features[order], data[order]
    # on sorted cells, a binary search per cell: no nnz-sized temporary (bincount would copy to int64)
    indptr = np.searchsorted(cells, np.arange(n_cells + 1, dtype=cells.dtype)).astype(np.int64, copy=False)
    return Csr(indptr, features.astype(np.int32, copy=False), data)


def check_values(data: np.ndarray, source: Source, where: Callable[[int], str]) -> None:
    """Raise :class:`InvalidValueError` for a negative, NaN or infinite count.

    ``where(k)`` describes entry ``k`` for the message.
    """
    bad = ~np.isfinite(data)
    bad |= data < 0
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise InvalidValueError(
            f"{where(k)}: count {data[k]:g} is negative, NaN or infinite; raw counts must be finite and >= 0",
            path=source,
        )


@dataclass(slots=True)
class Triplets:
    """A Matrix Market coordinate body: 0-based rows and columns, values as float64."""

    shape: tuple[int, int]
    rows: np.ndarray
    cols: np.ndarray
    data: np.ndarray


#: Index arrays at least this large get their own memory map (see :func:`_index_pair`).
_MAP_BYTES = 1 << 20


def read_matrix_market(source: Source) -> Triplets:
    """Parse a (compressed) Matrix Market coordinate file, streaming it through the parser.

    Raises
    ------
    FormatError
        Not a coordinate ``general`` Matrix Market file, an entry outside the declared
        shape, or fewer/more entries than the size line declares.
    InvalidValueError
        A value that is not a number, or a negative, NaN or infinite one.
    CorruptFileError
        The compression is truncated or corrupt.
    """
    try:
        from scipy.io._fast_matrix_market import _fmm_core, _get_read_cursor
    except ImportError:  # pragma: no cover - scipy without fast_matrix_market
        return _read_matrix_market_public(source)
    with _open.open_decompressed(source) as stream:
        try:
            cursor, _ = _get_read_cursor(stream)
            header = cursor.header
            _check_header(header.format, header.field, header.symmetry, source)
            index = np.int32 if max(header.nrows, header.ncols) < 2**31 else np.int64
            rows, cols = _index_pair(header.nnz, index)
            data = np.empty(header.nnz, dtype=np.float64)
            _fmm_core.read_body_coo(cursor, rows, cols, data)
        except ValueError as e:
            raise _parse_error(e, source) from e
        except (OSError, EOFError) as e:
            raise CorruptFileError(f"is corrupt or truncated: {e}", path=source) from e
    return _checked(Triplets((int(header.nrows), int(header.ncols)), rows, cols, data), source)


def _checked(triplets: Triplets, source: Source) -> Triplets:
    rows, cols = triplets.rows, triplets.cols
    check_values(triplets.data, source, lambda k: f"entry {k + 1} (row {rows[k] + 1}, column {cols[k] + 1})")
    return triplets


def _index_pair(nnz: int, dtype: type[np.integer]) -> tuple[np.ndarray, np.ndarray]:
    """Row and column index arrays in anonymous memory maps of their own, not from malloc.

    Why: glibc raises its mmap threshold to the size of any mmap-ed block freed below
    32 MB. The int32 index arrays of a typical 10x sample (~7M entries: 28 MB each),
    once freed, would push it to 28 MB; the engine's per-sample arrays of that size would
    then come from the heap, which is not given back to the OS when the engine frees
    them while concatenating: the build's peak grew by ~330 MB on 10 such samples.
    A private map is returned to the OS as soon as its array is dropped.
    """
    nbytes = nnz * np.dtype(dtype).itemsize
    if nbytes < _MAP_BYTES:
        return np.empty(nnz, dtype=dtype), np.empty(nnz, dtype=dtype)
    return tuple(np.frombuffer(mmap.mmap(-1, nbytes), dtype=dtype) for _ in range(2))  # type: ignore[return-value]


def _read_matrix_market_public(source: Source) -> Triplets:  # pragma: no cover - old scipy
    import scipy.io

    try:
        matrix = scipy.io.mmread(io.BytesIO(_open.read_bytes(source)))
    except ValueError as e:
        raise _parse_error(e, source) from e
    if not hasattr(matrix, "row"):
        raise FormatError("a dense ('array') Matrix Market file; 10x matrices are 'coordinate'", path=source)
    return _checked(Triplets(matrix.shape, matrix.row, matrix.col, matrix.data.astype(np.float64)), source)


def _check_header(fmt: str, field: str, symmetry: str, source: Source) -> None:
    if fmt != "coordinate":
        raise FormatError(
            f"a Matrix Market {fmt!r} file; count matrices are sparse 'coordinate' files", path=source
        )
    if field == "complex":
        raise FormatError("complex Matrix Market values are not counts", path=source)
    if symmetry != "general":
        raise FormatError(
            f"a {symmetry!r} Matrix Market file; a cells/genes count matrix is 'general'", path=source
        )


def _parse_error(e: ValueError, source: Source) -> Exception:
    message = str(e)
    if "Invalid" in message and "value" in message:
        return InvalidValueError(f"a value is not a number ({message})", path=source)
    if "Missing banner" in message:
        return FormatError("not a Matrix Market file (its first line is not '%%MatrixMarket ...')", path=source)
    if "Truncated file" in message:
        return FormatError(
            f"holds fewer entries than its size line declares ({message}); the file is probably cut short",
            path=source,
        )
    if "out of bounds" in message:
        return FormatError(f"an entry lies outside the shape its size line declares ({message})", path=source)
    if "Too many lines" in message:
        return FormatError(f"holds more entries than its size line declares ({message})", path=source)
    return FormatError(f"not a valid Matrix Market file: {message}", path=source)


def to_cells(
    triplets: Triplets,
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
    if layout == "genes_by_cells":
        cells, feats = triplets.cols, triplets.rows
    else:
        cells, feats = triplets.rows, triplets.cols
    csr = coo_to_csr(cells, feats, triplets.data, n_barcodes)
    return csr, f"{layout.replace('_by_', ' x ')}: {why}"


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
