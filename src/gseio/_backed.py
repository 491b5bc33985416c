"""Out-of-core assembly: stream CSR row blocks straight into an ``.h5ad`` on disk.

The matrix goes to ``X/data``, ``X/indices`` and ``X/indptr`` as the pieces arrive (32-bit
indices, or 64-bit indices and indptr once there are more than 2**31 non-zeros), so memory
holds only the pieces in flight, never the matrix. ``obs``, ``var`` and ``uns`` are written
at the end with anndata's own element writer, so any anndata reads the file. The file is
written under a temporary name and renamed only when complete.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .export._atomic import output_error, system_error, temporary_name

#: Values rewritten at once when a pass over the file is needed.
BLOCK_NNZ = 1 << 22
_INT32_MAX = np.iinfo(np.int32).max


@contextlib.contextmanager
def _writing(path: Path) -> Iterator[None]:
    """A write that fails for a reason of the system (a full disk) as an OutputError naming the h5ad."""
    try:
        yield
    except (OSError, RuntimeError) as e:
        cause = system_error(e)
        if cause is None:
            raise
        raise output_error(cause, path) from cause


def _write_elem(group: Any, key: str, value: Any) -> None:
    try:
        from anndata.io import write_elem
    except ImportError:  # pragma: no cover - anndata < 0.11
        from anndata.experimental import write_elem
    write_elem(group, key, value)


class BackedWriter:
    """Append CSR rows to an h5ad being written at ``path``.

    Parameters
    ----------
    path
        The ``.h5ad`` to create (written as a temporary sibling until :meth:`finish`).
    dtype
        ``"float32"``, ``"float64"``, or ``"auto"``: float32 until a piece holds a value
        float32 cannot represent exactly, then the values written so far are widened.
    """

    def __init__(self, path: Path, *, dtype: str) -> None:
        import h5py

        self.path = Path(path)
        self.tmp = temporary_name(self.path)
        self._dtype = dtype
        with _writing(self.path):
            self._file = h5py.File(self.tmp, "w")
        group = self._file.create_group("X")
        value_type = np.float64 if dtype == "float64" else np.float32
        chunk = (1 << 18,)
        self._data = group.create_dataset("data", (0,), maxshape=(None,), dtype=value_type, chunks=chunk)
        self._indices = group.create_dataset("indices", (0,), maxshape=(None,), dtype=np.int32, chunks=chunk)
        self._indptr = group.create_dataset(
            "indptr", data=np.zeros(1, np.int64), maxshape=(None,), chunks=(1 << 16,)
        )
        self.nnz = 0
        self.n_rows = 0

    @property
    def exact(self) -> bool:
        """Whether every value written so far is exact in float32."""
        return self._data.dtype == np.float32

    def append(self, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray) -> None:
        """Append rows: ``indptr`` starts at 0 and has one entry per row plus one."""
        with _writing(self.path):
            self._append(indptr, indices, data)

    def _append(self, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray) -> None:
        if data.dtype == np.float64 and self._data.dtype == np.float32 and self._dtype == "auto":
            self._widen()
        n = data.size
        if self.nnz + n > _INT32_MAX and self._indices.dtype == np.int32:
            self._widen_indices()
        if n:
            self._data.resize((self.nnz + n,))
            self._data[self.nnz :] = data.astype(self._data.dtype, copy=False)
            self._indices.resize((self.nnz + n,))
            self._indices[self.nnz :] = indices
        rows = indptr.size - 1
        self._indptr.resize((self.n_rows + rows + 1,))
        self._indptr[self.n_rows + 1 :] = indptr[1:] + self.nnz
        self.nnz += n
        self.n_rows += rows

    def _widen_indices(self) -> None:
        """Past 2**31 non-zeros, indices and indptr must both be 64-bit (scipy and sklearn want them equal)."""
        self._replace("indices", np.int64)
        self._indices = self._file["X/indices"]

    def _replace(self, name: str, dtype: type[np.generic]) -> None:
        group = self._file["X"]
        old = group[name]
        new = group.create_dataset(f"{name}_new", old.shape, maxshape=(None,), dtype=dtype, chunks=old.chunks)
        for start in range(0, old.shape[0], BLOCK_NNZ):
            new[start : start + BLOCK_NNZ] = old[start : start + BLOCK_NNZ]
        del group[name]
        group.move(f"{name}_new", name)

    def _widen(self) -> None:
        """Rewrite the values as float64 (a value arrived that float32 cannot hold exactly)."""
        self._replace("data", np.float64)
        self._data = self._file["X/data"]

    def _remap_columns(self, rank: np.ndarray) -> None:
        """Renumber every column through ``rank`` and sort each row's columns again, block by block."""
        from scipy import sparse

        indptr = self._indptr[:]
        row = 0
        while row < self.n_rows:
            end = int(np.searchsorted(indptr, indptr[row] + BLOCK_NNZ, side="right")) - 1
            end = min(max(end, row + 1), self.n_rows)
            lo, hi = int(indptr[row]), int(indptr[end])
            block = sparse.csr_matrix(
                (self._data[lo:hi], rank[self._indices[lo:hi]], indptr[row : end + 1] - lo),
                shape=(end - row, rank.size),
            )
            block.sort_indices()
            self._indices[lo:hi] = block.indices
            self._data[lo:hi] = block.data
            row = end

    def finish(
        self, *, n_cols: int, obs: Any, var: Any, uns: dict[str, Any], rank: np.ndarray | None,
        varm: dict[str, Any] | None = None,
    ) -> Path:  # fmt: skip
        """Write the remaining elements, close, and move the file into place."""
        with _writing(self.path):
            return self._finish(n_cols=n_cols, obs=obs, var=var, uns=uns, rank=rank, varm=varm)

    def _finish(
        self, *, n_cols: int, obs: Any, var: Any, uns: dict[str, Any], rank: np.ndarray | None,
        varm: dict[str, Any] | None,
    ) -> Path:  # fmt: skip
        if rank is not None:
            self._remap_columns(rank)
        if self._indices.dtype == np.int32:  # small enough: 32-bit indptr, like scipy's own
            self._replace("indptr", np.int32)
        group = self._file["X"]
        group.attrs["encoding-type"] = "csr_matrix"
        group.attrs["encoding-version"] = "0.1.0"
        group.attrs["shape"] = np.array([self.n_rows, n_cols], dtype=np.int64)
        self._file.attrs["encoding-type"] = "anndata"
        self._file.attrs["encoding-version"] = "0.1.0"
        _write_elem(self._file, "obs", obs)
        _write_elem(self._file, "var", var)
        _write_elem(self._file, "uns", uns)
        _write_elem(self._file, "varm", varm or {})
        for key in ("obsm", "layers", "obsp", "varp"):
            _write_elem(self._file, key, {})
        self._file.close()
        fd = os.open(self.tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Close and remove the temporary file (the build failed); never raises.

        After a failed write (a full disk) HDF5 cannot close the file: the error that
        stopped the build is the one to report, not this one.
        """
        try:
            with contextlib.suppress(Exception):
                self._file.close()
        finally:
            with contextlib.suppress(OSError):
                self.tmp.unlink(missing_ok=True)
