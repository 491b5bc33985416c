"""The build report: every input file accounted for, and the outputs checked against it.

A build records, for every input file, its format, unit, checksum and status
(``read``, ``skipped: reason`` or ``ignored: reason``), and for every unit read its
cells, genes, non-zeros and total counts. The report is kept in
``adata.uns["gseio"]["build_report"]`` (as JSON text) and ``gseio build`` writes it to
``build_report.json`` next to its outputs, after checking that the outputs hold exactly
the cells and counts of the units read (:func:`check_outputs`, which re-reads the files
written).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import OutputError

if TYPE_CHECKING:
    from anndata import AnnData

    from ._piece import Piece
    from ._source import Source
    from ._unit import Unit

__all__ = ["ConservationError", "build_report", "check_outputs", "write_build_report"]

#: The report's file name next to the outputs.
REPORT_NAME = "build_report.json"
#: The report of a build whose outputs failed the conservation check (they were not published).
FAILED_REPORT_NAME = "build_report.failed.json"

#: Version of the report's layout (bumped when keys change meaning).
REPORT_VERSION = 1


#: A single-cell unit with fewer non-zeros is compared by bytes only, not by content, for duplicates.
CONTENT_MIN_NNZ = 32


class ConservationError(OutputError):
    """The outputs written do not hold the cells or counts of the inputs read."""


def checksum(source: Source) -> tuple[int, str]:
    """Size and SHA-256 of a file's raw (still compressed) bytes."""
    digest, size = hashlib.sha256(), 0
    with source.open() as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


@dataclass(slots=True)
class UnitStats:
    """What one unit contributed (before genes are joined)."""

    cells: int = 0
    genes: int = 0
    nnz: int = 0
    total_counts: float = 0.0
    integer: bool = True
    #: Digest of the cells, genes and counts (not of the file): one matrix saved in two formats has one.
    content: str | None = None

    @classmethod
    def of(cls, pieces: list[Piece]) -> UnitStats:
        stats = cls()
        digest = hashlib.sha256()
        for piece in pieces:
            stats.cells += piece.n_cells
            stats.genes = max(stats.genes, len(piece.genes.names))
            stats.nnz += piece.nnz
            with np.errstate(over="ignore"):  # absurd values overflow; they are refused elsewhere
                total = float(piece.data.sum(dtype=np.float64))
            stats.total_counts += total
            stats.integer = stats.integer and piece.data.dtype == np.float32  # float32 pieces hold integers
            digest.update("\0".join(piece.cells).encode("utf-8", "surrogateescape"))
            digest.update(piece.genes.key.encode())
            digest.update(np.asarray(piece.indptr, dtype=np.int64).tobytes())
            digest.update(repr((piece.nnz, total)).encode())
            # a sample of the entries (every entry would cost a pass over the data for little more)
            step = max(1, piece.nnz // 4096)
            digest.update(np.asarray(piece.indices[::step], dtype=np.int64).tobytes())
            digest.update(np.asarray(piece.data[::step], dtype=np.float64).tobytes())
        # one cell with a handful of reads may match another by chance; a matrix of cells, or a deep cell, not
        compared = stats.nnz and (stats.cells > 1 or stats.nnz >= CONTENT_MIN_NNZ)
        stats.content = digest.hexdigest() if compared else None
        return stats


@dataclass
class Recorder:
    """Collects the report while a build runs (main thread only)."""

    input_path: Path
    files: list[dict[str, Any]] = field(default_factory=list)
    units: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    _by_checksum: dict[str, str] = field(default_factory=dict)
    _by_content: dict[str, str] = field(default_factory=dict)
    _integer: bool = True

    def duplicate_of(
        self, checksums: dict[str, tuple[int, str]], main_role: str, stats: UnitStats
    ) -> tuple[str, str] | None:
        """The unit read before with the same main file bytes, or the same cells and counts, and which.

        Only units holding counts are compared (empty wells may well be identical).
        """
        if stats.nnz == 0:
            return None
        if main_role in checksums and (earlier := self._by_checksum.get(checksums[main_role][1])):
            return earlier, "bytes"
        if stats.content is not None and (earlier := self._by_content.get(stats.content)):
            return earlier, "content"
        return None

    def read(self, unit: Unit, checksums: dict[str, tuple[int, str]], stats: UnitStats, notes: str) -> None:
        main_role = unit.main_role
        if main_role in checksums and stats.nnz:
            self._by_checksum.setdefault(checksums[main_role][1], unit.name)
        if stats.content is not None:
            self._by_content.setdefault(stats.content, unit.name)
        self._files(unit.format, unit.name, unit.sources, checksums, "read", None)
        self._integer = self._integer and stats.integer
        self.units.append({
            "unit": unit.name, "format": unit.format, "sample": unit.sample, "cells": stats.cells,
            "genes": stats.genes, "nnz": stats.nnz, "total_counts": stats.total_counts,
            "files": [s.rel for s in unit.sources.values()], "notes": json.loads(notes) if notes else {},
        })  # fmt: skip

    def skipped(
        self, name: str, fmt: str | None, sources: dict[str, Source], checksums: dict[str, tuple[int, str]],
        reason: str,
    ) -> None:  # fmt: skip
        self._files(fmt, name, sources, checksums, "skipped", reason)

    def ignored(self, entries: list[tuple[str, str]]) -> None:
        for rel, reason in entries:
            self.files.append({"path": rel, "status": "ignored", "reason": reason, "format": None, "unit": None,
                               "bytes": None, "sha256": None})  # fmt: skip

    def _files(
        self, fmt: str | None, unit: str, sources: dict[str, Source], checksums: dict[str, tuple[int, str]],
        status: str, reason: str | None,
    ) -> None:  # fmt: skip
        for role, source in sources.items():
            size, sha = checksums.get(role, (None, None))
            self.files.append({"path": source.rel, "status": status, "reason": reason, "format": fmt,
                               "unit": unit, "role": role, "bytes": size, "sha256": sha})  # fmt: skip

    def finish(self, *, n_genes: int, gene_report: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
        """The report as a JSON-ready dict."""
        status = [f["status"] for f in self.files]
        return {
            "report_version": REPORT_VERSION,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "input": str(self.input_path.resolve()),
            "options": options,
            "files": sorted(self.files, key=lambda f: f["path"]),
            "units": self.units,
            "totals": {
                "files": len(self.files),
                "read": status.count("read"),
                "skipped": status.count("skipped"),
                "ignored": status.count("ignored"),
                "units": len(self.units),
                "cells": sum(u["cells"] for u in self.units),
                "nnz": sum(u["nnz"] for u in self.units),
                "total_counts": float(sum(u["total_counts"] for u in self.units)),
                "genes": n_genes,
                "integer_counts": self._integer,
            },
            "genes": _jsonable(gene_report),
            "warnings": list(self.warnings),
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def build_report(adata: AnnData) -> dict[str, Any]:
    """The build report of an AnnData made by :func:`gseio.read_gse_dir` (or ``gseio build``).

    Returns
    -------
    A dict: ``files`` (every input file: ``path``, ``status`` ``read`` / ``skipped`` /
    ``ignored``, ``reason``, ``format``, ``unit``, ``bytes``, ``sha256``), ``units`` (every
    unit read: ``cells``, ``genes``, ``nnz``, ``total_counts``, the reader's ``notes``),
    ``totals``, ``genes`` (the gene identity report), ``warnings`` and ``options``.

    Raises
    ------
    KeyError
        ``adata`` was not built by gseio (no ``uns["gseio"]["build_report"]``).
    """
    text = adata.uns["gseio"]["build_report"]
    return json.loads(str(text))


def write_build_report(report: dict[str, Any], path: str | Path) -> Path:
    """Write ``report`` as indented JSON, atomically (temporary name, fsync, rename)."""
    from .export._atomic import atomic_outputs

    path = Path(path)
    with atomic_outputs([path]) as (tmp,):
        tmp.write_text(json.dumps(report, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    return path


# the check re-reads the outputs; it lives apart (a reader of reports needs none of it)
from ._conservation import check_outputs  # noqa: E402
