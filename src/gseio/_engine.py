"""The build engine: read units in parallel, in order, and assemble their pieces.

:func:`assemble_units` is what every public reader ends in (``read``, ``read_gse_dir``,
``read_<format>``): it checks the options, reads the units on a thread pool (through the
unit cache when resuming), applies the error policy in path order, refuses mixes of
kinds of data, and hands the pieces to the :class:`~gseio._assembler.Assembler`, in
memory or streaming to disk. The provenance it records is what ``uns["gseio"]`` holds.
"""

from __future__ import annotations

import importlib
import json
import logging
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

import numpy as np

from . import _backed, _registry
from ._assembler import Assembler
from ._options import DType, DuplicateGenes, GeneIds, GeneOrder, OnError
from ._parallel import ordered_map, resolve_jobs
from ._piece import Piece, exact_in_float32
from ._source import Source
from ._unit import ReadOptions, Unit
from ._version import __version__
from .errors import InputError, MixedInputError, OutputError

if TYPE_CHECKING:
    from anndata import AnnData

    from ._cache import UnitCache

logger = logging.getLogger("gseio.assemble")

__all__ = ["assemble_units"]


_CHOICES = {
    "on_error": OnError, "dtype": DType, "gene_order": GeneOrder, "duplicate_genes": DuplicateGenes,
    "gene_ids": GeneIds,
}  # fmt: skip


def _check_choices(**values: Any) -> None:
    for option, value in values.items():
        allowed = get_args(_CHOICES[option])
        if value not in allowed:
            raise ValueError(f"{option} must be one of {', '.join(map(repr, allowed))}, not {value!r}")


def _check_mixing(units: Sequence[Unit], values: set[str], *, allow_mixed: bool, where: object) -> None:
    kinds = {_registry.get_format(u.format).kind for u in units}
    if not allow_mixed and {"single_cell", "bulk"} <= kinds:
        formats = sorted({f"{u.format} ({_registry.get_format(u.format).kind})" for u in units})
        raise MixedInputError(
            "the input mixes single-cell data with per-sample (bulk-like) quantifications: "
            f"{', '.join(formats)}. Select one kind with pattern=, or pass allow_mixed=True (--allow-mixed) "
            "to join them anyway",
            path=where,
        )
    if not allow_mixed and len(values) > 1:
        raise MixedInputError(
            "the input mixes raw counts with already-normalised values (TPM, FPKM, ...); select one kind "
            "with pattern=, or pass allow_mixed=True (--allow-mixed) to join them anyway",
            path=where,
        )


def assemble_units(
    units: Sequence[Unit],
    *,
    input_path: Path,
    options: ReadOptions,
    gene_order: GeneOrder = "first_seen",
    dtype: DType = "auto",
    on_error: OnError = "raise",
    progress: bool = False,
    n_jobs: int | None = None,
    allow_mixed: bool = False,
    ignored: Sequence[tuple[str, str]] = (),
    failures: Sequence[tuple[Source, InputError]] = (),
    user_options: dict[str, Any] | None = None,
    backed: Path | None = None,
    cache_dir: Path | None = None,
    gene_ids: GeneIds = "auto",
    gene_table: Any = None,
) -> AnnData:
    """Read ``units`` (in parallel, in order) and assemble them; the engine behind every reader.

    ``failures`` are files planning could not identify: raised or recorded as skipped
    like read errors. ``ignored`` and ``user_options`` go to the provenance. With
    ``backed``, rows are streamed into that ``.h5ad`` and a backed AnnData is returned.
    With ``cache_dir``, parsed units are kept there and reused by a later build.
    """
    from ._cache import UnitCache
    from .readers._gene_blocks import GeneBlockCache

    _check_choices(on_error=on_error, dtype=dtype, gene_order=gene_order, duplicate_genes=options.duplicate_genes)
    started = time.perf_counter()
    _check_mixing(units, set(), allow_mixed=allow_mixed, where=input_path)
    skipped: list[tuple[str, str]] = []
    # files no reader recognised fail in path order among the units, as read errors do
    items: list[Unit | InputError] = [u for _, u in sorted([(u.name, u) for u in units] + [
        (source.rel, error) for source, error in failures], key=lambda pair: pair[0])]  # fmt: skip
    options = replace(options, cache=GeneBlockCache())
    if backed is not None and Path(backed).exists():
        raise OutputError("exists already; remove it or choose another file for backed=", path=backed)
    sink = None if backed is None else _backed.BackedWriter(Path(backed), dtype=dtype)
    try:
        return _assemble(
            items, failures, sink, None if cache_dir is None else UnitCache(cache_dir),
            input_path=input_path, options=options, gene_order=gene_order, dtype=dtype,
            on_error=on_error, progress=progress, n_jobs=n_jobs, allow_mixed=allow_mixed, ignored=ignored,
            user_options=user_options, skipped=skipped, started=started, gene_ids=gene_ids,
            gene_table=gene_table,
        )  # fmt: skip
    except BaseException:
        if sink is not None:
            sink.abort()
        raise


def _assemble(
    items: list[Unit | InputError],
    failures: Sequence[tuple[Source, InputError]],
    sink: _backed.BackedWriter | None,
    unit_cache: UnitCache | None,
    *,
    input_path: Path,
    options: ReadOptions,
    gene_order: GeneOrder,
    dtype: DType,
    on_error: OnError,
    progress: bool,
    n_jobs: int | None,
    allow_mixed: bool,
    ignored: Sequence[tuple[str, str]],
    user_options: dict[str, Any] | None,
    skipped: list[tuple[str, str]],
    started: float,
    gene_ids: GeneIds,
    gene_table: Any,
) -> AnnData:
    from tqdm.auto import tqdm

    if "anndata" not in sys.modules:  # import it while the readers work, not after them (~0.25 s)
        threading.Thread(target=importlib.import_module, args=("anndata",), daemon=True).start()
    assembler = Assembler(sink, gene_ids=gene_ids, gene_table=gene_table)

    from_cache: list[str] = []

    def read_one(unit: Unit | InputError) -> list[Piece] | InputError:
        if isinstance(unit, InputError):
            return unit
        if unit_cache is not None and (cached := unit_cache.get(unit, options)) is not None:
            from_cache.append(unit.name)  # list.append is atomic: safe from the reader threads
            return cached
        try:
            pieces = _registry.get_format(unit.format).read_unit(unit, options)
        except InputError as e:
            return e
        for piece in pieces:  # integers below 2**24 are exact in float32: half the memory
            if piece.data.dtype != np.float32 and exact_in_float32(piece.data):
                piece.data = piece.data.astype(np.float32)
        if unit_cache is not None:
            unit_cache.put(unit, options, pieces)
        return pieces

    read_units: list[Unit] = []
    notes: list[str] = []
    values: set[str] = set()
    results = ordered_map(read_one, items, n_jobs=resolve_jobs(n_jobs, len(items)))
    bar = tqdm(zip(items, results, strict=True), total=len(items), desc="reading", unit="unit",
               disable=not progress, dynamic_ncols=True)  # fmt: skip
    for unit, result in bar:
        if isinstance(result, InputError):
            if on_error == "raise":
                results.close()
                raise result
            name = unit.name if isinstance(unit, Unit) else _rel_name(unit, failures)
            logger.warning("skipped %s: %s", name, result.reason)
            skipped.append((name, f"{type(result).__name__}: {result.reason}"))
            continue
        read_units.append(unit)
        notes.append(json.dumps({k: v for p in result for k, v in p.notes.items()}, sort_keys=True))
        for piece in result:
            values.add(piece.values)
            assembler.add(piece, sample=unit.sample, source_file=unit.name)
        # the assembler copied what it needs: empty the list (the progress bar and zip still hold
        # it until the next unit is ready) so that the piece's arrays are freed now
        result.clear()
        piece = None
    # the progress bar's zip holds the last (unit, result) pair: let it go before the final copy
    del bar, results
    _check_mixing(read_units, values, allow_mixed=allow_mixed, where=input_path)
    if assembler.n_cells == 0 and skipped:
        raise InputError(
            f"every one of the {len(items)} inputs was skipped; first: {skipped[0][0]}: {skipped[0][1]}",
            path=input_path,
        )
    provenance = _provenance(
        input_path=input_path,
        units=read_units,
        notes=notes,
        skipped=sorted(skipped),
        ignored=ignored,
        options=user_options or {"duplicate_genes": options.duplicate_genes, "dtype": dtype},
        n_duplicate_gene_rows=assembler.n_duplicate_genes,
        seconds=time.perf_counter() - started,
    )
    provenance["units_from_cache"] = len(from_cache)
    provenance["genes"] = assembler.gene_report()
    if sink is not None:
        return assembler.finish_backed(gene_order=gene_order, uns={"gseio": provenance})
    adata = assembler.finish(gene_order=gene_order, dtype=dtype)
    adata.uns["gseio"] = provenance
    return adata


def _rel_name(error: InputError, failures: Sequence[tuple[Source, InputError]]) -> str:
    return next(source.rel for source, e in failures if e is error)


def _provenance(
    *,
    input_path: Path,
    units: Sequence[Unit],
    notes: Sequence[str],
    skipped: Sequence[tuple[str, str]],
    ignored: Sequence[tuple[str, str]],
    options: dict[str, Any],
    n_duplicate_gene_rows: int,
    seconds: float,
) -> dict[str, Any]:
    """Provenance in ``uns["gseio"]``; only types that h5ad stores (str, numbers, string arrays)."""

    def strings(values: Iterable[str]) -> np.ndarray:
        return np.array(list(values), dtype=object)

    return {
        "version": __version__,
        "input": str(input_path.resolve()),
        "files": strings(u.name for u in units),
        "formats": strings(u.format for u in units),
        "notes": strings(notes),
        "skipped_files": strings(p for p, _ in skipped),
        "skipped_reasons": strings(r for _, r in skipped),
        "ignored_files": strings(p for p, _ in ignored),
        "ignored_reasons": strings(r for _, r in ignored),
        "options": {k: "None" if v is None else str(v) for k, v in options.items()},
        "n_duplicate_gene_rows": int(n_duplicate_gene_rows),
        "seconds": float(seconds),
    }
