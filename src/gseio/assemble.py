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

import os
import stat
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from . import _registry
from ._discover import Plan, group_units, plan_units
from ._engine import _check_choices, assemble_units
from ._listing import list_sources
from ._options import DType, DuplicateGenes, GeneIds, GeneOrder, OnError
from ._source import Source
from ._unit import ReadOptions, Unit
from .errors import InputError

if TYPE_CHECKING:
    from anndata import AnnData


__all__ = ["assemble_units", "read", "read_gse_dir"]


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


def plan_input(
    path: str | os.PathLike[str],
    *,
    pattern: str | None = None,
    format: str | None = None,
    exclude: Iterable[str | os.PathLike[str]] = (),
) -> Plan:
    """Plan a build of a folder or an uncompressed tar: its units, ignored files and failures."""
    root = Path(path)
    if format is not None:
        _registry.get_format(format)  # an unknown name fails before any file is read
    sources, ignored = list_sources(root, pattern=pattern, exclude=exclude)
    plan = plan_units(sources, format=format)
    plan.ignored = sorted([*ignored, *plan.ignored])
    return plan


#: Bytes of CSR per byte of decompressed text: an upper estimate for count data as tools write it.
#: A stored value costs 8 bytes in memory (int32 index + float32 value; 12 with float64 values)
#: and, in every common layout, more than 5 bytes of text with its separators and the zeros around
#: it: ``12345 678 3\n`` in Matrix Market (so 0.6 byte per byte), ``ENSG...\t8\n`` in a per-cell
#: file, ``1234\t`` plus zeros in a dense bulk table (~1.3), ``12.3456\t`` with float64 values (1.5).
#: Only dense tables of one-digit counts go beyond (up to 4: ``1\t`` per value).
CSR_BYTES_PER_TEXT_BYTE = 1.5
#: Bytes of CSR per byte of an HDF5 file (10x h5, h5ad, loom): their datasets are often compressed.
CSR_BYTES_PER_HDF5_BYTE = 3.0
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def estimate_matrix_bytes(
    path: str | os.PathLike[str], *, pattern: str | None = None, exclude: Iterable[str | os.PathLike[str]] = ()
) -> int:
    """An upper estimate of the in-memory size of the matrix a build of ``path`` makes (no file is parsed).

    Text inputs count by their decompressed size, known without decompressing where the format
    records it (gzip's trailer, zip's directory, xz's index; see :func:`gseio._expanded.expanded_size`),
    times :data:`CSR_BYTES_PER_TEXT_BYTE`; HDF5 files by their size times
    :data:`CSR_BYTES_PER_HDF5_BYTE`. The estimate bounds the result, not the text: a dense table's
    CSR is much smaller than its text, and reading any text table takes a bounded working set
    (blocks of lines), whatever its size, so the text itself never needs to fit.
    """
    from ._expanded import expanded_size

    sources, _ = list_sources(Path(path), pattern=pattern, exclude=exclude)
    total = 0.0
    for source in sources:
        try:
            with source.open() as fh:
                hdf5 = fh.read(len(_HDF5_MAGIC)) == _HDF5_MAGIC
        except (OSError, InputError):  # reported when the build reads it
            hdf5 = False
        if hdf5:
            total += CSR_BYTES_PER_HDF5_BYTE * source.stat_size()
        else:
            total += CSR_BYTES_PER_TEXT_BYTE * expanded_size(source)
    return int(total)


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
        grouped, _ = group_units(_siblings(path), format=format)
        units = [u for u in grouped if any(s.path == path for s in u.sources.values())]
        if not units:
            source = Source.file(path)
            name = format if format is not None else _registry.detect_format(source)
            units = [Unit(format=name, sources={"data": source}, name=source.rel, sample=_sample(source))]
    # one file needs no join: its labels are kept as written (gene_ids="exact")
    return assemble_units(units, input_path=path, options=options, dtype=dtype, n_jobs=1, gene_ids="exact",
                          user_options={"format": format, "duplicate_genes": duplicate_genes, "dtype": dtype,
                                        **{k: str(v) for k, v in reader_options.items()}})  # fmt: skip


def _siblings(path: Path) -> list[Source]:
    """The files beside ``path`` that may form its unit (a 10x triplet, a kallisto folder), ``path`` included.

    Regular files, and links that stay in the folder; a link leading elsewhere is never read.
    """
    folder = Path(os.path.realpath(path.parent))
    found = []
    for entry in sorted(path.parent.iterdir()):
        try:
            info = os.lstat(entry)
            if stat.S_ISLNK(info.st_mode):
                real = Path(os.path.realpath(entry, strict=True))
                if entry != path and real.parent != folder:
                    continue
                info = os.stat(real)
        except OSError:
            continue
        if stat.S_ISREG(info.st_mode):
            link = entry.is_symlink()
            found.append(Source.listed(entry, rel=entry.name, identity=(info.st_dev, info.st_ino), link=link))
    return found


def _sample(source: Source) -> str:
    from .geo import sample_of_path

    return sample_of_path(source.rel)


def read_gse_dir(
    path: str | os.PathLike[str],
    *,
    pattern: str | None = None,
    exclude: Iterable[str | os.PathLike[str]] = (),
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
    exclude
        Files or folders inside ``path`` never to read, each listed as ignored (``gseio
        build`` passes its output folder, so that a rebuild never reads its own outputs).
        Folders holding a gseio build (its ``build_report.json``), hidden folders and gseio's
        working folders are set aside anyway.
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
        the units it had not reached. Entries are keyed by the files' names and content
        (SHA-256) and the reader options, so any changed input is parsed again, even an
        edit that kept the file's size and modification time.
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
    plan = plan_input(root, pattern=pattern, format=format, exclude=exclude)
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
