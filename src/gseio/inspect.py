"""Look at an input before building it: units, formats, shapes, the readers' decisions, ignored files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from . import _open, _registry
from ._parallel import ordered_map, resolve_jobs
from ._unit import ReadOptions, Unit
from .assemble import _reader_options, plan_input
from .errors import InputError

__all__ = ["inspect_input"]


def _entry(unit: Unit) -> dict[str, Any]:
    return {
        "unit": unit.name,
        "format": unit.format,
        "kind": _registry.get_format(unit.format).kind,
        "sample": unit.sample,
        "files": {role: source.rel for role, source in unit.sources.items()},
    }


def _describe(unit: Unit, options: ReadOptions) -> dict[str, Any]:
    entry = _entry(unit)
    try:
        pieces = _registry.get_format(unit.format).read_unit(unit, options)
    except InputError as e:
        entry["error"] = f"{type(e).__name__}: {e.reason}"
        return entry
    genes = {name for piece in pieces for name in piece.genes.names}
    entry.update(
        cells=sum(p.n_cells for p in pieces),
        genes=len(genes),
        nnz=sum(p.nnz for p in pieces),
        values=sorted({p.values for p in pieces}),
        notes={k: v for p in pieces for k, v in p.notes.items()},
    )
    return entry


def inspect_input(
    path: str | os.PathLike[str],
    *,
    pattern: str | None = None,
    format: str | None = None,
    read: bool = True,
    n_jobs: int | None = None,
    **reader_options: Any,
) -> dict[str, Any]:
    """Describe what :func:`gseio.read_gse_dir` would read, without assembling anything.

    Parameters
    ----------
    path
        A folder or an uncompressed ``GSE..._RAW.tar``.
    pattern, format, **reader_options
        As for :func:`gseio.read_gse_dir`.
    read
        Parse every unit to report its cells, genes, non-zeros and the reader's
        decisions (orientation, strandedness, ...). ``False`` only groups and detects.
    n_jobs
        Units parsed at once (threads); ``None``: every core.

    Returns
    -------
    A JSON-ready dict: ``input``; ``units`` (each with ``unit``, ``format``, ``kind``,
    ``sample``, ``files`` and, when read, ``cells``, ``genes``, ``nnz``, ``values``,
    ``notes`` or ``error``); ``ignored`` and ``unrecognised`` (``{"file", "reason"}``).
    """
    options = _reader_options("sum", reader_options)
    plan = plan_input(Path(path), pattern=pattern, format=format)
    if read:
        with _open.expansion_limit(options.max_expansion):
            units = list(ordered_map(lambda u: _describe(u, options), plan.units,
                                     n_jobs=resolve_jobs(n_jobs, len(plan.units))))  # fmt: skip
    else:
        units = [_entry(u) for u in plan.units]
    return {
        "input": str(Path(path).resolve()),
        "units": units,
        "ignored": [{"file": f, "reason": r} for f, r in plan.ignored],
        "unrecognised": [{"file": s.rel, "reason": f"{type(e).__name__}: {e.reason}"} for s, e in plan.failures],
    }
