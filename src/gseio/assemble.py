"""Assemble per-file pieces into one cells x genes AnnData.

The flow is discover -> detect -> read -> align genes -> assemble. Readers return
:class:`~gseio._piece.Piece` objects over their own gene lists; the
:class:`Assembler` maps each distinct gene list to global gene positions once (an
integer array, cached by the list's digest), keeps the remapped CSR arrays of
every piece, and concatenates them once at the end. Nothing is padded dense,
nothing is re-indexed per file with pandas, and no matrix is stacked in a loop.

Gene order: genes appear in the order they are first seen, reading files in
sorted path order and each file top to bottom (``gene_order="first_seen"``, the
default; the files of one series usually share one order, which is kept).
``gene_order="sorted"`` sorts gene names, which is the order
``anndata.concat(..., join="outer")`` produces when files' gene lists differ.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, get_args

import numpy as np

from . import _registry
from ._assembler import Assembler, exact_in_float32
from ._discover import discover
from ._options import DType, DuplicateGenes, GeneOrder, OnError
from ._piece import Piece
from ._version import __version__
from .errors import InputError
from .geo import sample_of

if TYPE_CHECKING:
    from anndata import AnnData

logger = logging.getLogger(__name__)

__all__ = ["Assembler", "assemble_files", "read", "read_gse_dir"]


T = TypeVar("T")
R = TypeVar("R")


def assemble_files(
    files: Sequence[Path],
    *,
    root: Path,
    format: str | None = None,
    duplicate_genes: DuplicateGenes = "sum",
    gene_order: GeneOrder = "first_seen",
    dtype: DType = "auto",
    on_error: OnError = "raise",
    progress: bool = False,
    n_jobs: int | None = None,
    input_path: Path | None = None,
    ignored: Sequence[tuple[str, str]] = (),
    options: dict[str, Any] | None = None,
) -> AnnData:
    """Read ``files`` and assemble them; the engine behind every public reader.

    ``input_path`` (default ``root``), ``ignored`` (``(relative path, reason)`` of files
    discovery left out) and ``options`` (as the user gave them) go to the provenance.
    """
    from tqdm.auto import tqdm

    from .readers._gene_blocks import GeneBlockCache

    started = time.perf_counter()
    skipped: list[tuple[str, str]] = []

    for option, value, choices in (
        ("on_error", on_error, OnError),
        ("dtype", dtype, DType),
        ("gene_order", gene_order, GeneOrder),
        ("duplicate_genes", duplicate_genes, DuplicateGenes),
    ):
        if value not in get_args(choices):
            raise ValueError(f"{option} must be one of {', '.join(map(repr, get_args(choices)))}, not {value!r}")
    if format is not None:
        _registry.get_format(format)  # an unknown name fails before any file is read
    cache = GeneBlockCache()
    assembler = Assembler()

    def read_one(path: Path) -> list[Piece] | InputError:
        try:
            name = format if format is not None else _registry.detect_format(path)
            options: dict[str, Any] = {"duplicate_genes": duplicate_genes}
            if name == "cell_table":
                options["cache"] = cache
            pieces = _registry.get_format(name).read_pieces(path, **options)
        except InputError as e:
            return e
        for piece in pieces:  # integers below 2**24 are exact in float32: half the memory
            if piece.data.dtype != np.float32 and exact_in_float32(piece.data):
                piece.data = piece.data.astype(np.float32)
        return pieces

    read_files: list[str] = []
    results = _ordered_map(read_one, files, n_jobs=_resolve_jobs(n_jobs, len(files)))
    for path, result in tqdm(
        zip(files, results, strict=True),
        total=len(files),
        desc="reading",
        unit="file",
        disable=not progress,
        dynamic_ncols=True,
    ):
        rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
        if isinstance(result, InputError):
            if on_error == "raise":
                results.close()
                raise result
            logger.warning("skipped %s: %s", rel, result.reason)
            skipped.append((rel, f"{type(result).__name__}: {result.reason}"))
            continue
        read_files.append(rel)
        for piece in result:
            assembler.add(piece, sample=sample_of(path.name), source_file=rel)
    if assembler.n_cells == 0 and skipped:
        raise InputError(
            f"every one of the {len(files)} count files was skipped; first: {skipped[0][0]}: {skipped[0][1]}",
            path=input_path or root,
        )
    adata = assembler.finish(gene_order=gene_order, dtype=dtype)
    if options is None:
        options = {"format": format, "duplicate_genes": duplicate_genes, "dtype": dtype}
    adata.uns["gseio"] = _provenance(
        input_path=input_path or root,
        files=read_files,
        skipped=skipped,
        ignored=ignored,
        options=options,
        n_duplicate_gene_rows=assembler.n_duplicate_genes,
        seconds=time.perf_counter() - started,
    )
    return adata


def _resolve_jobs(n_jobs: int | None, n_files: int) -> int:
    if n_jobs is None:
        n_jobs = os.cpu_count() or 1
    elif n_jobs < 1:
        n_jobs = max(1, (os.cpu_count() or 1) + 1 + n_jobs)  # joblib style: -1 = all cores
    return max(1, min(n_jobs, n_files))


def _ordered_map(fn: Callable[[T], R], items: Sequence[T], *, n_jobs: int) -> Generator[R, None, None]:
    """``map(fn, items)`` on ``n_jobs`` threads, in order, with a bounded number of results in flight.

    Decompression (ISA-L, zlib) and Arrow's parser release the GIL, so threads overlap the heavy
    work without copying pieces between processes.
    """
    if n_jobs == 1:
        yield from map(fn, items)
        return
    window = 4 * n_jobs
    with ThreadPoolExecutor(max_workers=n_jobs, thread_name_prefix="gseio-read") as pool:
        pending: deque[Future[R]] = deque()
        try:
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) >= window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:  # on an early exit (error, generator closed), drop work not started yet
            for future in pending:
                future.cancel()


def read(
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    duplicate_genes: DuplicateGenes = "sum",
    dtype: DType = "auto",
) -> AnnData:
    """Read one file of any known format into an AnnData (cells x genes).

    Parameters
    ----------
    path
        The file.
    format
        A name from :func:`gseio.list_formats`; ``None`` detects it from the content.
    duplicate_genes, dtype
        As for :func:`read_gse_dir`.
    """
    path = Path(path)
    return assemble_files(
        [path], root=path.parent, input_path=path, format=format, duplicate_genes=duplicate_genes, dtype=dtype
    )


def read_gse_dir(
    path: str | os.PathLike[str],
    *,
    pattern: str | None = None,
    format: str | None = None,
    on_error: OnError = "raise",
    duplicate_genes: DuplicateGenes = "sum",
    gene_order: GeneOrder = "first_seen",
    dtype: DType = "auto",
    n_jobs: int | None = None,
    progress: bool = False,
) -> AnnData:
    """Assemble a GEO series' supplementary folder into one AnnData.

    Every count file under ``path`` (searched recursively, in sorted path order)
    contributes its cells; genes are joined by name (outer join: a gene missing
    from a file is 0 for its cells).

    Parameters
    ----------
    path
        The folder, e.g. an extracted ``GSE111065_RAW.tar``.
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
    dtype
        ``X``'s dtype: ``"auto"`` (default) gives float32 when every value is an
        integer below 2**24 (exact) and float64 otherwise; or force one.
    n_jobs
        Files read at once (threads); ``None`` (default) uses every core, ``-1`` too.
        The result is the same for any value.
    progress
        Show a progress bar.

    Returns
    -------
    AnnData, cells x genes, ``X`` a CSR matrix of the counts without stored zeros.
    ``obs`` holds ``sample`` (the GSM accession from the file name, else the file
    stem), ``source_file`` (path relative to ``path``), ``cell`` (the id the file
    gives the cell) and any per-cell QC counters a format carries (e.g.
    ``htseq_no_feature``). ``obs_names`` are the cell ids, made unique by prefixing
    the sample when they collide. ``uns["gseio"]`` records the provenance: version,
    input, files read, ignored and skipped files with reasons, and options.

    Raises
    ------
    ~gseio.errors.InputError
        A bad file (with ``on_error="raise"``), or nothing readable in ``path``.
    """
    root = Path(path)
    if not root.is_dir():
        raise InputError("not a folder; read a single file with gseio.read()", path=root)
    files, ignored = discover(root, pattern=pattern)
    if not files:
        listed = "; ".join(f"{p} ({why})" for p, why in ignored[:5])
        raise InputError(
            f"no count files found{': ignored ' + listed if listed else ' (the folder is empty)'}", path=root
        )
    options = {
        "pattern": pattern,
        "format": format,
        "on_error": on_error,
        "duplicate_genes": duplicate_genes,
        "gene_order": gene_order,
        "dtype": dtype,
        "n_jobs": n_jobs,
    }
    return assemble_files(
        files,
        root=root,
        format=format,
        duplicate_genes=duplicate_genes,
        gene_order=gene_order,
        dtype=dtype,
        on_error=on_error,
        progress=progress,
        n_jobs=n_jobs,
        ignored=ignored,
        options=options,
    )


def _provenance(
    *,
    input_path: Path,
    files: list[str],
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
        "files": strings(files),
        "skipped_files": strings(p for p, _ in skipped),
        "skipped_reasons": strings(r for _, r in skipped),
        "ignored_files": strings(p for p, _ in ignored),
        "ignored_reasons": strings(r for _, r in ignored),
        "options": {k: "None" if v is None else str(v) for k, v in options.items()},
        "n_duplicate_gene_rows": int(n_duplicate_gene_rows),
        "seconds": float(seconds),
    }
