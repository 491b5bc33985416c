"""Matrix Market matrices for the 10x family: parse fast, check strictly, orient, build CSR.

Bodies are parsed by fast_matrix_market (bundled with scipy >= 1.12): its C++ parser runs
on several threads and reads the decompressed stream in chunks, so the text of a matrix
(often 100 MB per sample) is never held whole in memory; the triplets land directly in
int32/float64 arrays sized from the header's entry count. Cell Ranger writes entries
sorted by cell, so the CSR row pointers come out of a binary search per cell, without
a sort.
"""

from __future__ import annotations

import io
import mmap
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .. import _open
from ..errors import CorruptFileError, FormatError, InvalidValueError

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._source import Source


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
