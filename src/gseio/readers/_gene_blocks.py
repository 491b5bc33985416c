"""A cache of gene columns already seen, shared by the reader threads of one build.

The files of a GEO series almost always share their gene column byte for byte. Readers
look a file's parsed gene column up here (one memory comparison against each candidate
of the same length) and decode, check and digest gene names only for a new column.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .._piece import GeneBlock

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True, slots=True)
class BlockInfo:
    """What a reader derived from one gene column: its block and which rows are genes."""

    block: GeneBlock
    keep: np.ndarray | None  # rows that are genes (None: all rows)
    special_rows: np.ndarray  # rows holding htseq-count counters
    special_names: tuple[str, ...]
    note: str | None = None  # what cleaning the names did (names stripped of whitespace), for the notes


class GeneBlockCache:
    """Remembers recently seen gene columns so each is decoded only once.

    Parameters
    ----------
    max_entries
        How many distinct gene columns to keep.
    """

    def __init__(self, max_entries: int = 16) -> None:
        self._entries: OrderedDict[int, list[tuple[pa.Array, str, BlockInfo]]] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()  # readers share one cache across threads

    def get(self, column: pa.Array, policy: str) -> BlockInfo | None:
        """Return the cached info for an equal gene column read under the same policy."""
        with self._lock:
            candidates = list(self._entries.get(len(column), ()))
        for cached, cached_policy, info in candidates:
            if cached_policy == policy and cached.equals(column):
                return info
        return None

    def put(self, column: pa.Array, policy: str, info: BlockInfo) -> None:
        """Remember ``info`` for ``column``."""
        with self._lock:
            self._entries.setdefault(len(column), []).insert(0, (column, policy, info))
            self._entries.move_to_end(len(column))
            while sum(len(v) for v in self._entries.values()) > self._max:
                key = next(iter(self._entries))
                self._entries[key].pop()
                if not self._entries[key]:
                    del self._entries[key]
