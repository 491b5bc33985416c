"""Per-file sparse pieces: what every reader hands to the assembler.

A :class:`Piece` is one unit's cells as CSR rows over the unit's *own* gene list.
Readers never align genes; the assembler maps each piece's local gene indices to
the global gene index through an integer array, once per distinct gene list
(a :class:`GeneBlock`), and concatenates all pieces once at the end.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, slots=True, eq=False)
class GeneBlock:
    """A gene list shared by one or more pieces.

    Attributes
    ----------
    names
        Gene names (the join key), in the order the piece's ``indices`` refer to; a name
        may repeat when the input repeated it and the duplicate policy is ``"sum"``.
    key
        Digest of ``names``; equal gene lists have equal keys, in any process.
    n_duplicates
        How many rows of the input repeated a gene name already seen in the file.
    annotations
        Per-gene columns for ``var`` (e.g. ``gene_symbols``, ``feature_types``,
        ``length``), each aligned with ``names``. The first non-missing value seen for
        a gene across all pieces is kept.
    """

    names: np.ndarray
    key: str
    n_duplicates: int = 0
    annotations: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def from_names(
        cls,
        names: np.ndarray | list[str],
        *,
        n_duplicates: int = 0,
        annotations: dict[str, np.ndarray] | None = None,
    ) -> GeneBlock:
        """Build a block, computing its key from the names."""
        names = np.asarray(names, dtype=object)
        digest = hashlib.blake2b(digest_size=16)
        for name in names:
            digest.update(name.encode("utf-8", "surrogateescape"))
            digest.update(b"\0")
        annotations = {k: np.asarray(v) for k, v in (annotations or {}).items()}
        for column, values in annotations.items():
            if len(values) != len(names):
                raise ValueError(f"annotation {column!r} has {len(values)} values for {len(names)} genes")
        return cls(names=names, key=digest.hexdigest(), n_duplicates=n_duplicates, annotations=annotations)


@dataclass(slots=True, eq=False)
class Piece:
    """Cells of one input unit as CSR rows over the unit's own genes.

    Attributes
    ----------
    source
        The input file the cells came from.
    cells
        The id the file itself gives each cell (one per row).
    genes
        The local gene list ``indices`` refers to.
    indptr, indices, data
        CSR arrays: ``indptr`` has ``len(cells) + 1`` entries; ``indices`` are int32
        positions in ``genes``; ``data`` are float64 values, zeros not stored.
    obs
        Extra per-cell columns (e.g. htseq-count's ``__no_feature`` counters).
    values
        ``"counts"`` (raw counts, possibly fractional like RSEM's expected counts) or
        ``"normalized"`` (TPM, FPKM, ...): the two are not mixed silently.
    notes
        Decisions the reader took (orientation, strandedness, ...) and why, for the
        provenance.
    """

    source: str
    cells: list[str]
    genes: GeneBlock
    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    obs: dict[str, np.ndarray] = field(default_factory=dict)
    values: str = "counts"
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def n_cells(self) -> int:
        """Number of cells (rows) in the piece."""
        return len(self.cells)

    @property
    def nnz(self) -> int:
        """Number of stored (non-zero) values."""
        return int(self.data.size)


#: Every integer below this is exact in float32.
FLOAT32_EXACT = 2**24


def exact_in_float32(data: np.ndarray) -> bool:
    """Whether every value is an integer float32 represents exactly (so float32 loses nothing)."""
    block = 1 << 20  # in blocks: temporaries stay small however large a piece is
    for start in range(0, data.size, block):
        part = data[start : start + block]
        if not (np.all(np.abs(part) < FLOAT32_EXACT) and np.all(np.floor(part) == part)):
            return False
    return True


def check_counts(values: np.ndarray, path: object, where: Callable[[int], str]) -> None:
    """Raise :class:`~gseio.errors.InvalidValueError` at the first negative, NaN or infinite count.

    ``where(k)`` says where value ``k`` sits in the file (row and gene, entry and column),
    for the message.
    """
    from .errors import InvalidValueError

    bad = ~np.isfinite(values)
    bad |= values < 0
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise InvalidValueError(
            f"{where(k)}: count {values[k]:g} is negative, NaN or infinite; raw counts must be finite and >= 0",
            path=path,
        )


def check_unique_cells(cells: Sequence[str], path: object, where: Callable[[int], str]) -> None:
    """Raise :class:`~gseio.errors.FormatError` when a cell id repeats inside one input unit.

    Two cells of one file with one id are a damaged file or a mistake of its writer: joined
    silently (or renamed ``x.1`` as pandas does) they would be wrong either way. ``where(k)``
    says where cell ``k`` sits in the file (a header column, a line), for the message.
    """
    import pandas as pd

    from .errors import FormatError

    index = pd.Index(cells, dtype=object)
    if index.is_unique:
        return
    second = int(np.flatnonzero(index.duplicated())[0])
    first = int(np.flatnonzero(index == index[second])[0])
    raise FormatError(
        f"cell id {index[second]!r} is repeated ({where(first)} and {where(second)}); the cells of one file must "
        "have distinct ids",
        path=path,
    )
