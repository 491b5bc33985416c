"""Large arrays in memory maps of their own: returned to the OS when dropped, grown without copying.

Two costs this module avoids, both measured on a 10x series of 10 x 7 M non-zeros:

- glibc raises its mmap threshold to the size of any mmap-ed block freed below 32 MB.
  Once the ~28 MB arrays of a sample are freed, the next arrays of that size come from
  the heap, which is not given back to the OS when freed: the build's peak grew by
  ~330 MB. A private map of our own is unmapped as soon as its array is dropped.
- numpy asks the kernel for transparent huge pages on large allocations; where the
  kernel compacts memory to serve them (``defrag`` = ``madvise``, a common default),
  first touching 285 MB took 0.53 s instead of 0.12 s. Our maps ask for none.

:class:`Arena` appends arrays into one map that grows by remapping (``mremap`` on Linux:
the pages move, nothing is copied), so concatenating the pieces of a build costs one
copy of each piece, made as it arrives, and no final copy of the whole.
"""

from __future__ import annotations

import contextlib
import mmap

import numpy as np

#: Arrays at least this large get their own memory map.
MAP_BYTES = 1 << 20

_FLAGS = getattr(mmap, "MAP_PRIVATE", 0) | getattr(mmap, "MAP_ANONYMOUS", 0)


def _map(nbytes: int) -> mmap.mmap:
    if _FLAGS:
        return mmap.mmap(-1, max(nbytes, 1), flags=_FLAGS)
    return mmap.mmap(-1, max(nbytes, 1))  # pragma: no cover - Windows


def empty(n: int, dtype: type[np.generic] | np.dtype) -> np.ndarray:
    """An uninitialised array, in an anonymous private memory map of its own when large."""
    dtype = np.dtype(dtype)
    nbytes = n * dtype.itemsize
    if nbytes < MAP_BYTES:
        return np.empty(n, dtype=dtype)
    return np.frombuffer(_map(nbytes), dtype=dtype, count=n)


#: Consumed arrays are copied, and their memory given back, this many bytes at a time.
_BLOCK_BYTES = 8 << 20

_PAGE = mmap.PAGESIZE


def _own_map(values: np.ndarray) -> mmap.mmap | None:
    """The map ``values`` alone occupies (made by :func:`empty`), or ``None``."""
    base = values.base
    if isinstance(base, memoryview):  # np.frombuffer(map) holds a memoryview of the map
        base = base.obj
    if not isinstance(base, mmap.mmap) or not values.flags.c_contiguous or values.nbytes > len(base):
        return None
    start = np.frombuffer(base, dtype=np.uint8, count=1).__array_interface__["data"][0]
    return base if values.__array_interface__["data"][0] == start else None


def _discard(own: mmap.mmap, start: int, stop: int) -> None:
    """Give the whole pages of bytes ``[start, stop)`` of ``own`` back to the OS (they read as zeros after)."""
    advice = getattr(mmap, "MADV_DONTNEED", None)
    first, last = -(-start // _PAGE) * _PAGE, (stop // _PAGE) * _PAGE
    if stop >= len(own):
        last = len(own)  # the tail: its last, partial page too
    if advice is None or last <= first:
        return
    with contextlib.suppress(OSError, ValueError):
        own.madvise(advice, first, last - first)


class Arena:
    """A one-dimensional array built by appending, in one growable memory map.

    Parameters
    ----------
    dtype
        The element type; :meth:`widen` changes it later (one copy).
    """

    def __init__(self, dtype: type[np.generic] | np.dtype) -> None:
        self.dtype = np.dtype(dtype)
        self.size = 0
        self._map: mmap.mmap | None = None

    @property
    def _capacity(self) -> int:
        return 0 if self._map is None else len(self._map) // self.dtype.itemsize

    def _reserve(self, n: int) -> None:
        if n <= self._capacity:
            return
        nbytes = max(n, self._capacity * 3 // 2, MAP_BYTES // self.dtype.itemsize) * self.dtype.itemsize
        if self._map is None:
            self._map = _map(nbytes)
            return
        try:  # mremap: the pages move, nothing is copied (no view may be alive, hence none is kept)
            self._map.resize(nbytes)
        except (OSError, SystemError, ValueError, TypeError):  # pragma: no cover - no mremap (macOS, Windows)
            bigger = _map(nbytes)
            bigger[: self.size * self.dtype.itemsize] = self._map[: self.size * self.dtype.itemsize]
            self._map.close()
            self._map = bigger

    def append(self, values: np.ndarray, *, consume: bool = False) -> None:
        """Copy ``values`` (cast to :attr:`dtype`) to the end.

        With ``consume``, ``values`` is not used again by anyone: if it has a map of its own
        (:func:`empty`), its memory is returned to the OS block by block as it is copied, so
        that appending a large piece does not hold it twice.
        """
        self._reserve(self.size + values.size)
        if values.size:
            offset = self.size * self.dtype.itemsize
            view = np.frombuffer(self._map, dtype=self.dtype, count=values.size, offset=offset)
            own = _own_map(values) if consume else None
            # a consumed array goes in blocks, each given back once copied; any other in one copy
            step = values.size if own is None else max(1, _BLOCK_BYTES // values.itemsize)
            for start in range(0, values.size, step):
                stop = min(values.size, start + step)
                view[start:stop] = values[start:stop]
                if own is not None:
                    _discard(own, start * values.itemsize, stop * values.itemsize)
            del view
        self.size += values.size

    def widen(self, dtype: type[np.generic] | np.dtype) -> None:
        """Change the element type, converting what is stored (one copy)."""
        dtype = np.dtype(dtype)
        if dtype == self.dtype:
            return
        wider = Arena(dtype)
        if self._map is not None:
            old = np.frombuffer(self._map, dtype=self.dtype, count=self.size)
            wider.append(old)
            del old
            self._map.close()
        self.dtype, self.size, self._map = dtype, wider.size, wider._map

    def take(self) -> np.ndarray:
        """The array, trimmed to its size; the arena is empty afterwards."""
        if self._map is None or self.size * self.dtype.itemsize < MAP_BYTES:
            out = np.empty(self.size, dtype=self.dtype)
            if self.size:
                out[:] = np.frombuffer(self._map, dtype=self.dtype, count=self.size)
            if self._map is not None:
                self._map.close()
        else:
            with contextlib.suppress(OSError, SystemError, ValueError, TypeError):  # no mremap: keep the slack
                self._map.resize(self.size * self.dtype.itemsize)
            out = np.frombuffer(self._map, dtype=self.dtype, count=self.size)
        self._map, self.size = None, 0
        return out
