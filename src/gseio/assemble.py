"""Assemble a GEO series' supplementary files into one cells x genes AnnData.

The flow is discover -> detect -> read -> align genes -> assemble. The inputs (files of
a folder, or members of a ``GSE..._RAW.tar`` read in place) are grouped into units
(one per-cell file, one 10x triplet, ...), each unit's format is detected from its
content, readers turn units into :class:`~gseio._piece.Piece` objects over their own
gene lists, and the :class:`~gseio._assembler.Assembler` maps each distinct gene list
to global gene positions once and concatenates all pieces once at the end. Nothing is
padded dense, nothing is re-indexed per file with pandas, and no matrix is stacked in
a loop.

Gene order: genes appear in the order they are first seen, reading units in sorted
path order and each file top to bottom (``gene_order="first_seen"``, the default; the
files of one series usually share one order, which is kept). ``gene_order="sorted"``
sorts gene names, which is the order ``anndata.concat(..., join="outer")`` produces
when files' gene lists differ.
"""

from __future__ import annotations

import json
import logging
import os
import time
import typing
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

import numpy as np

from . import _backed, _registry
from ._assembler import Assembler
from ._discover import Plan, group_units, list_sources, plan_units
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

logger = logging.getLogger(__name__)

__all__ = ["assemble_units", "read", "read_gse_dir"]

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
        result = piece = None  # the assembler holds what it needs; the piece's own arrays can go
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


def _reader_options(duplicate_genes: DuplicateGenes, extra: dict[str, Any]) -> ReadOptions:
    unknown = set(extra) - set(ReadOptions.__dataclass_fields__) - {"cache"}
    if unknown:
        known = sorted(set(ReadOptions.__dataclass_fields__) - {"cache", "duplicate_genes"})
        raise TypeError(f"unknown reader option(s) {', '.join(sorted(unknown))}; known: {', '.join(known)}")
    options = ReadOptions(duplicate_genes=duplicate_genes, **extra)
    hints = typing.get_type_hints(ReadOptions)
    for name in extra:  # Literal-typed options are checked here, before any file is read
        allowed = get_args(hints[name])
        if allowed and all(isinstance(a, str) for a in allowed) and extra[name] not in allowed:
            raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, not {extra[name]!r}")
    return options


def plan_input(path: str | os.PathLike[str], *, pattern: str | None = None, format: str | None = None) -> Plan:
    """Plan a build of a folder or an uncompressed tar: its units, ignored files and failures."""
    root = Path(path)
    if format is not None:
        _registry.get_format(format)  # an unknown name fails before any file is read
    sources, ignored = list_sources(root, pattern=pattern)
    plan = plan_units(sources, format=format)
    plan.ignored = sorted([*ignored, *plan.ignored])
    return plan


#: Bytes of CSR per byte of input, an upper estimate: a gzipped Matrix Market entry takes about
#: 4 bytes and becomes 8 (float32 value + int32 index); text tables store their zeros, CSR does not.
CSR_BYTES_PER_INPUT_BYTE = 3


def estimate_matrix_bytes(path: str | os.PathLike[str], *, pattern: str | None = None) -> int:
    """An upper estimate of the in-memory size of the matrix a build of ``path`` makes (no file is parsed)."""
    sources, _ = list_sources(Path(path), pattern=pattern)
    return CSR_BYTES_PER_INPUT_BYTE * sum(s.stat_size() for s in sources)


def read(
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    duplicate_genes: DuplicateGenes = "sum",
    dtype: DType = "auto",
    **reader_options: Any,
) -> AnnData:
    """Read one file, or one unit (a 10x folder, a salmon folder), of any known format.

    Parameters
    ----------
    path
        The file, or a folder that holds exactly one unit. A file that belongs to a
        multi-file unit (a 10x ``matrix.mtx.gz``) is read with the rest of its unit.
    format
        A name from :func:`gseio.list_formats`; ``None`` detects it from the content.
    duplicate_genes, dtype
        As for :func:`read_gse_dir`.
    **reader_options
        Format options (``orientation``, ``gene_expression_only``, ``genome``,
        ``strandedness``, ``tx2gene``); see :func:`read_gse_dir`.

    Returns
    -------
    AnnData, cells x genes, as :func:`read_gse_dir` returns it.
    """
    path = Path(path)
    options = _reader_options(duplicate_genes, reader_options)
    if path.is_dir():
        plan = plan_input(path, format=format)
        units = plan.units
        if len(units) != 1 or plan.failures:
            raise InputError(
                f"holds {len(units)} units and {len(plan.failures)} unrecognised files; read a folder of several "
                "units with gseio.read_gse_dir()",
                path=path,
            )
    else:
        siblings = [Source.file(p) for p in sorted(path.parent.iterdir()) if p.is_file()]
        grouped, _ = group_units(siblings, format=format)
        units = [u for u in grouped if any(s.path == path for s in u.sources.values())]
        if not units:
            source = Source.file(path)
            name = format if format is not None else _registry.detect_format(source)
            units = [Unit(format=name, sources={"data": source}, name=source.rel, sample=_sample(source))]
    # one file needs no join: its labels are kept as written (gene_ids="exact")
    return assemble_units(units, input_path=path, options=options, dtype=dtype, n_jobs=1, gene_ids="exact",
                          user_options={"format": format, "duplicate_genes": duplicate_genes, "dtype": dtype,
                                        **{k: str(v) for k, v in reader_options.items()}})  # fmt: skip


def _sample(source: Source) -> str:
    from .geo import sample_of_path

    return sample_of_path(source.rel)


def read_gse_dir(
    path: str | os.PathLike[str],
    *,
    pattern: str | None = None,
    format: str | None = None,
    on_error: OnError = "raise",
    duplicate_genes: DuplicateGenes = "sum",
    gene_order: GeneOrder = "first_seen",
    gene_ids: GeneIds = "auto",
    gene_table: Any = None,
    dtype: DType = "auto",
    allow_mixed: bool = False,
    backed: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    n_jobs: int | None = None,
    progress: bool = False,
    **reader_options: Any,
) -> AnnData:
    """Assemble a GEO series' supplementary folder, or its ``GSE..._RAW.tar``, into one AnnData.

    Every unit under ``path`` (searched recursively, in sorted path order; a RAW.tar is
    read in place, without extracting) contributes its cells; genes are joined by name
    (outer join: a gene missing from a unit is 0 for its cells).

    Parameters
    ----------
    path
        The folder, e.g. an extracted ``GSE111065_RAW.tar``, or the uncompressed tar itself.
    pattern
        A glob matched against each file's path relative to ``path`` (e.g.
        ``"*.raw_counts.txt.gz"``); other files are ignored (and listed as such).
        By default every file is read except documentation, images, checksums,
        archives and GEO metadata files.
    format
        Read every file with this format (see :func:`gseio.list_formats`) instead of
        detecting each file's format from its content.
    on_error
        ``"raise"`` (default): the first unreadable, empty, corrupt or invalid file
        stops the build with a :class:`~gseio.errors.InputError` naming it.
        ``"skip"``: such files are left out and listed, with the reason, in
        ``uns["gseio"]["skipped_files"]`` / ``["skipped_reasons"]``.
    duplicate_genes
        A gene name repeated inside one file: ``"sum"`` its counts (default),
        keep the ``"first"`` row, or raise (``"error"``).
    gene_order
        ``"first_seen"`` (default) or ``"sorted"``; see the module notes.
    gene_ids
        ``"auto"`` (default): Ensembl IDs join without their version suffix (the
        versioned ID is kept in ``var["gene_id_version"]``), and a series labelled by ID
        in some files and by symbol in others is refused
        (:class:`~gseio._genes.GeneIdentityError`); ``"exact"``: labels join as written.
    gene_table
        A gene table (:func:`gseio.genes.gene_table`): files labelled by symbol are indexed by
        the table's Ensembl ID for each unique symbol (so they join files labelled by ID;
        the symbol goes to ``var["gene_symbols"]``), and date-like symbols (``2-Sep``) are
        repaired where the table leaves one candidate. Counts in ``uns["gseio"]["genes"]``.
    dtype
        ``X``'s dtype: ``"auto"`` (default) gives float32 when every value is an
        integer below 2**24 (exact) and float64 otherwise; or force one.
    allow_mixed
        Join single-cell units with per-sample (bulk-like) quantifications, or raw
        counts with normalised values; refused by default (:class:`~gseio.errors.MixedInputError`).
    backed
        Build out of core: stream the rows straight into this ``.h5ad`` (which must not
        exist yet; it appears only when complete) and return it opened backed, read-only.
        Memory then holds the units being read, not the matrix. Same values as in memory.
    cache_dir
        Keep every parsed unit in this folder (durably, written atomically) and reuse
        what is there: an interrupted build restarted with the same arguments parses only
        the units it had not reached. Entries are keyed by the files' names, sizes and
        modification times and the reader options, so changed inputs are parsed again.
        ``uns["gseio"]["units_from_cache"]`` counts the reused units.
    n_jobs
        Units read at once (threads); ``None`` (default) uses every core, ``-1`` too.
        The result is the same for any value.
    progress
        Show a progress bar.
    **reader_options
        Format options: ``orientation`` (wide tables: ``"auto"``, ``"genes_by_cells"``,
        ``"cells_by_genes"``), ``gene_expression_only`` (10x), ``genome`` (10x HDF5 v2),
        ``strandedness`` (STAR: ``"auto"``, ``"unstranded"``, ``"forward"``, ``"reverse"``),
        ``tx2gene`` (a transcript-to-gene table or GTF for transcript-level quantifications).

    Returns
    -------
    AnnData, cells x genes, ``X`` a CSR matrix of the counts without stored zeros.
    ``obs`` holds ``sample`` (the GSM accession from the file name, else the file
    stem), ``source_file`` (path relative to ``path``), ``cell`` (the id the file
    gives the cell) and any per-cell QC counters a format carries (e.g.
    ``htseq_no_feature``). ``obs_names`` are the cell ids, made unique by prefixing
    the sample when they collide. ``var`` holds gene annotations the inputs carry.
    ``uns["gseio"]`` records the provenance: version, input, units read with their
    format and the readers' decisions, ignored and skipped files with reasons, options.

    Raises
    ------
    ~gseio.errors.InputError
        A bad file (with ``on_error="raise"``), or nothing readable in ``path``.
    """
    root = Path(path)
    if not root.exists():
        raise InputError("does not exist", path=root)
    options = _reader_options(duplicate_genes, reader_options)
    _check_choices(on_error=on_error, dtype=dtype, gene_order=gene_order, duplicate_genes=duplicate_genes,
                   gene_ids=gene_ids)  # fmt: skip
    plan = plan_input(root, pattern=pattern, format=format)
    if not plan.units and not plan.failures:
        listed = "; ".join(f"{p} ({why})" for p, why in plan.ignored[:5])
        what = "is empty" if root.is_dir() and not any(root.iterdir()) else "holds none"
        raise InputError(
            f"no count files found{': ignored ' + listed if listed else f' (the input {what})'}", path=root
        )
    user_options = {
        "pattern": pattern, "format": format, "on_error": on_error, "duplicate_genes": duplicate_genes,
        "gene_order": gene_order, "gene_ids": gene_ids, "dtype": dtype, "allow_mixed": allow_mixed,
        "n_jobs": n_jobs, "backed": backed,
        **reader_options,
    }  # fmt: skip
    return assemble_units(
        plan.units,
        input_path=root,
        options=options,
        gene_order=gene_order,
        dtype=dtype,
        on_error=on_error,
        progress=progress,
        n_jobs=n_jobs,
        allow_mixed=allow_mixed,
        ignored=plan.ignored,
        failures=plan.failures,
        user_options=user_options,
        backed=None if backed is None else Path(backed),
        cache_dir=None if cache_dir is None else Path(cache_dir),
        gene_ids=gene_ids,
        gene_table=gene_table,
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
