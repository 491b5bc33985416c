"""The build engine: read units in parallel, in order, and assemble their pieces.

:func:`assemble_units` is what every public reader ends in (``read``, ``read_gse_dir``,
``read_<format>``): it checks the options, reads the units on a thread pool (through the
unit cache when resuming), applies the error policy in path order, refuses mixes of
kinds of data, and hands the pieces to the :class:`~gseio._assembler.Assembler`, in
memory or streaming to disk. The provenance it records is what ``uns["gseio"]`` holds.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

import numpy as np

from . import _backed, _open, _registry, _warn
from ._assembler import Assembler
from ._options import DType, DuplicateGenes, GeneIds, GeneOrder, OnError
from ._parallel import importing_in_background, ordered_map, resolve_jobs
from ._piece import Piece, exact_in_float32
from ._source import Source, printable
from ._unit import ReadOptions, Unit
from ._version import __version__
from .errors import DuplicateInputError, InputError, MixedInputError, OutputError
from .report import Recorder, UnitStats, checksum

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
    keyed = [(u.name, u) for u in units] + [(source.rel, _Failure(source, error)) for source, error in failures]
    items: list[Unit | _Failure] = [u for _, u in sorted(keyed, key=lambda pair: pair[0])]
    options = replace(options, cache=GeneBlockCache())
    if backed is not None and Path(backed).exists():
        raise OutputError("exists already; remove it or choose another file for backed=", path=backed)
    sink = None if backed is None else _backed.BackedWriter(Path(backed), dtype=dtype)
    try:
        with (
            _warn.recording() as warned,
            _open.expansion_limit(options.max_expansion),
            importing_in_background("anndata"),  # while the readers work, not after them
        ):
            return _assemble(
                items, sink, None if cache_dir is None else UnitCache(cache_dir), warned,
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
    items: list[Unit | _Failure],
    sink: _backed.BackedWriter | None,
    unit_cache: UnitCache | None,
    warned: list[str],
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
    from .readers import _names

    assembler = Assembler(sink, gene_ids=gene_ids, gene_table=gene_table)
    recorder = Recorder(input_path, warnings=warned)

    from_cache: list[str] = []
    named: set[str] = set()  # gene lists whose names were checked

    def read_one(item: Unit | _Failure) -> _Outcome:
        if isinstance(item, _Failure):
            return _Outcome(None, item.error, _checksums({"data": item.source}))
        checksums = _checksums(item.sources)
        if unit_cache is not None and (cached := unit_cache.get(item, options, checksums)) is not None:
            try:
                _names.check_pieces(cached, item, named)
            except InputError as e:
                return _Outcome(None, e, checksums)
            from_cache.append(item.name)  # list.append is atomic: safe from the reader threads
            return _Outcome(cached, None, checksums, UnitStats.of(cached))
        try:
            pieces = _registry.get_format(item.format).read_unit(item, options)
            _names.check_pieces(pieces, item, named)  # the backstop: names the platform reads back
        except InputError as e:
            return _Outcome(None, e, checksums)
        for piece in pieces:  # integers below 2**24 are exact in float32: half the memory
            if piece.data.dtype != np.float32 and exact_in_float32(piece.data):
                piece.data = piece.data.astype(np.float32)
        if unit_cache is not None:
            unit_cache.put(item, options, pieces, checksums)
        return _Outcome(pieces, None, checksums, UnitStats.of(pieces))

    read_units: list[Unit] = []
    notes: list[str] = []
    values: set[str] = set()
    results = ordered_map(read_one, items, n_jobs=resolve_jobs(n_jobs, len(items)))
    try:  # however the loop ends, reading stops and the reader threads are joined
        bar = _progress(zip(items, results, strict=True), total=len(items), show=progress)
        for item, outcome in bar:
            error = outcome.error
            if error is None and isinstance(item, Unit) and outcome.stats is not None:
                error = _duplicate(recorder, item, outcome)
            if error is not None:
                if on_error == "raise":
                    raise error
                source = item.source if isinstance(item, _Failure) else item.main
                name = item.name if isinstance(item, Unit) else source.rel
                logger.warning("skipped %s: %s", name, error.reason)
                reason = f"{type(error).__name__}: {error.reason}"
                skipped.append((name, reason))
                sources = item.sources if isinstance(item, Unit) else {"data": source}
                recorder.skipped(name, item.format, sources, outcome.checksums,
                                 reason)  # fmt: skip
                outcome.pieces = None
                continue
            assert isinstance(item, Unit)
            assert outcome.pieces is not None
            assert outcome.stats is not None
            read_units.append(item)
            note = json.dumps({k: v for p in outcome.pieces for k, v in p.notes.items()}, sort_keys=True)
            notes.append(note)
            recorder.read(item, outcome.checksums, outcome.stats, note)
            for piece in outcome.pieces:
                values.add(piece.values)
                assembler.add(piece, consume=True, sample=item.sample, source_file=item.name)
            # the assembler copied what it needs: drop the pieces now (the progress bar and zip still
            # hold the outcome until the next unit is ready)
            outcome.pieces = piece = None
    finally:
        results.close()
        if hasattr(bar, "close"):
            bar.close()
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
    recorder.ignored(list(ignored))

    def uns() -> dict[str, Any]:  # made last: the warnings of finishing are in the report too
        report = recorder.finish(n_genes=assembler.n_genes, gene_report=provenance["genes"],
                                 options=dict(provenance["options"]))  # fmt: skip
        return {"gseio": {**provenance, "build_report": json.dumps(report)}}

    if sink is not None:
        return assembler.finish_backed(gene_order=gene_order, uns=uns)
    adata = assembler.finish(gene_order=gene_order, dtype=dtype)
    adata.uns.update(uns())
    return adata


def _progress(iterable: Iterable[Any], *, total: int, show: bool) -> Iterable[Any]:
    """A progress bar over ``iterable``, or the iterable itself when nothing is shown.

    tqdm starts a monitor thread for every bar, shown or not, that outlives the build; the bar
    shown has its monitor switched off (it only tunes the refresh rate).
    """
    if not show:
        return iterable
    from tqdm.auto import tqdm

    class Bar(tqdm):  # type: ignore[misc, valid-type]
        monitor_interval = 0

    return Bar(iterable, total=total, desc="reading", unit="unit", dynamic_ncols=True)


@dataclass(frozen=True, slots=True)
class _Failure:
    """A file planning could not identify: it fails in path order among the units, as read errors do."""

    source: Source
    error: InputError

    @property
    def format(self) -> None:
        return None


@dataclass(slots=True)
class _Outcome:
    """What a reader thread hands back for one item: pieces or an error, and the files' checksums."""

    pieces: list[Piece] | None
    error: InputError | None
    checksums: dict[str, tuple[int, str]]
    stats: UnitStats | None = None


def _checksums(sources: dict[str, Source]) -> dict[str, tuple[int, str]]:
    """Size and SHA-256 per role; a file that cannot be read has none (its reader says why)."""
    out = {}
    for role, source in sources.items():
        try:
            out[role] = checksum(source)
        except (OSError, InputError):  # unreadable, or a tar member cut short: the reader says so
            continue
    return out


def _duplicate(recorder: Recorder, unit: Unit, outcome: _Outcome) -> DuplicateInputError | None:
    """An error when ``unit``'s main file has the bytes of a unit read before (the same file twice)."""
    role = unit.main_role
    assert outcome.stats is not None
    found = recorder.duplicate_of(outcome.checksums, role, outcome.stats)
    if found is None:
        return None
    earlier, how = found
    if how == "bytes":
        sha = outcome.checksums[role][1][:16]
        what = f"the same bytes as {earlier} (SHA-256 {sha}...): the same file under two names?"
    else:
        what = (f"the same cells and counts as {earlier}: one matrix saved twice (e.g. as .mtx and as .h5, or "
                "filtered and raw alike)?")  # fmt: skip
    return DuplicateInputError(
        f"holds {what} Remove one, or pass on_error='skip' to keep the first only", path=unit.main
    )


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
        "input": printable(str(input_path.resolve())),  # a name that is not UTF-8 cannot be stored as it is
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
