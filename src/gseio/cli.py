"""The ``gseio`` command line.

``gseio build INPUT -o OUTDIR`` assembles a GEO supplementary folder (or its RAW.tar)
and writes the platform template plus ``OUTDIR/<name>.h5ad``; ``gseio inspect INPUT``
shows what a build would read; ``gseio demo DIR`` writes the demo folder; ``gseio
formats`` lists the input formats. The format options are generated from
:class:`gseio._unit.ReadOptions`, so the CLI and the Python API cannot drift apart.
Heavy libraries are imported inside the commands so that ``--help`` answers at once.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, get_args

import click

from ._cli_support import (
    attribute_docs,
    build_summary,
    checked_report,
    clean_after_failure,
    default_budget,
    final_paths,
    h5ad_name_of,
    hdf5_left_open,
    manifest_table,
    number_or_none,
    parse_size,
    quiet_hdf5,
    stored_values,
    write_outputs,
)
from ._options import DuplicateGenes, GeneIds, GeneOrder, OnError
from ._version import __version__

F = TypeVar("F", bound=Callable[..., Any])

EXIT_ERROR = 1
#: Where ``gseio build`` keeps parsed units until the build is complete (see ``--resume``).
CACHE_FOLDER = ".gseio-cache"


def _choice(flag: str, choices: Any, help: str) -> Callable[[F], F]:
    """A ``click.Choice`` option built from the API's ``Literal`` type; its first value is the default."""
    values = list(get_args(choices))
    return click.option(flag, type=click.Choice(values), default=values[0], show_default=True, help=help)


def _given(options: dict[str, Any]) -> dict[str, Any]:
    """The reader options the user set (unset ones keep the API's defaults)."""
    return {k: v for k, v in options.items() if v not in (None, False, "auto")}


def _reader_options(command: F) -> F:
    """Add one CLI option per :class:`~gseio._unit.ReadOptions` field (but the internal ones)."""
    import dataclasses
    import typing

    from ._unit import ReadOptions

    hints = typing.get_type_hints(ReadOptions)
    docs = attribute_docs(ReadOptions)
    for field in reversed(dataclasses.fields(ReadOptions)):
        if field.name in ("cache", "duplicate_genes"):
            continue
        flag = "--" + field.name.replace("_", "-")
        hint = hints[field.name]
        kwargs: dict[str, Any] = {"help": docs.get(field.name, ""), "show_default": True}
        if get_args(hint) and all(isinstance(a, str) for a in get_args(hint)):
            kwargs.update(type=click.Choice(list(get_args(hint))), default=field.default)
        elif hint is bool:
            kwargs.update(is_flag=True, default=False, show_default=False)
        elif Path in get_args(hint):
            kwargs.update(type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None)
        elif float in get_args(hint):  # a number, or "none" for no limit
            kwargs.update(type=str, default=None, metavar="NUMBER|none", callback=number_or_none)
        else:
            kwargs.update(type=str, default=None)
        command = click.option(flag, field.name, **kwargs)(command)
    return command


def _fail(error: Exception, *, outdir: Path | None = None, created: bool = False, backed: bool = False) -> None:
    """Print the error and exit 1; after a build that met a full disk, leave no cache (nor a new empty OUTDIR)."""
    click.echo(f"error: {error}", err=True)
    if outdir is not None:
        clean_after_failure(error, outdir=outdir, cache=outdir / CACHE_FOLDER, created=created)
    if backed and hdf5_left_open():
        # an out-of-core h5ad whose write failed half-way cannot be closed, and HDF5's exit
        # handler would crash on it (see gseio.export.h5ad): leave without running it
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_ERROR)
    sys.exit(EXIT_ERROR)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="gseio")
def main() -> None:
    """Assemble GEO series supplementary files into sparse AnnData, h5ad and the platform template.

    Typical use, on an extracted GSE..._RAW.tar folder of per-cell count files:

        gseio build GSE111065_RAW -o GSE111065_processed

    Try it on generated demo data first:

        gseio demo demo_input && gseio build demo_input -o demo_output
    """


@main.command()
@click.argument("input_dir", metavar="INPUT", type=click.Path(exists=True, path_type=Path))
@click.option(
    "-o",
    "--outdir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder for the template files and the .h5ad (created if missing).",
)
@click.option("--name", default=None, help="Name of the h5ad file (default: the input folder's name).")
@click.option(
    "--pattern",
    default=None,
    help="Only read files whose path matches this glob, e.g. GSM*.txt.gz (quote it in the shell).",
)
@click.option(
    "--format",
    "format_",
    default=None,
    metavar="FORMAT",
    help="Read every file as this format instead of detecting it (see 'gseio formats').",
)
@_choice("--on-error", OnError, "'raise': stop at the first bad file; 'skip': leave bad files out and list them.")
@_choice("--duplicate-genes", DuplicateGenes, "What to do with a gene name repeated inside one file.")
@_choice("--gene-order", GeneOrder, "Order of the genes (columns).")
@_choice(
    "--gene-ids",
    GeneIds,
    "'auto': Ensembl IDs join without their version, and a series labelled by ID in some files and by "
    "symbol in others is refused; 'exact': labels join as written.",
)
@click.option(
    "--allow-mixed",
    is_flag=True,
    help="Join single-cell units with per-sample (bulk-like) quantifications, or counts with TPM/FPKM.",
)
@_reader_options
@click.option("-j", "--jobs", type=int, default=None, help="Units read at once (default: one per core).")
@click.option(
    "--max-memory",
    default=None,
    metavar="SIZE",
    help="Memory budget, e.g. 2GB. When the result may exceed it, the build runs out of core: rows stream "
    "straight into the h5ad. Default: half of this machine's memory.",
)
@click.option("--tpm", is_flag=True, help="Also compute TPM and write the template's TPM part (needs --protocol).")
@click.option(
    "--protocol",
    default=None,
    metavar="NAME",
    help="Library protocol for --tpm, e.g. smart-seq2 (divides by gene length) or '10x Chromium' (does not).",
)
@click.option(
    "--gtf",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A GTF (or a Gene_ID/Gene_name/Gene_length table): gene lengths for --tpm and symbols/IDs for "
    "geneAnnotation.tsv.",
)
@click.option(
    "--missing-length",
    type=click.Choice(["median", "drop", "error"]),
    default="median",
    show_default=True,
    help="--tpm: genes without a known length get the median length (the platform's rule), TPM 0, or an error.",
)
@click.option(
    "--resume/--no-resume",
    default=True,
    show_default=True,
    help="Keep parsed units in OUTDIR/.gseio-cache until the build succeeds, so that an interrupted build "
    "restarted with the same command parses only what it had not reached.",
)
@click.option(
    "--overwrite", is_flag=True, help="Replace outputs that exist already (once the new ones are complete)."
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary.")
def build(
    input_dir: Path,
    outdir: Path,
    name: str | None,
    pattern: str | None,
    format_: str | None,
    on_error: str,
    duplicate_genes: str,
    gene_order: str,
    gene_ids: str,
    allow_mixed: bool,
    jobs: int | None,
    max_memory: str | None,
    tpm: bool,
    protocol: str | None,
    gtf: Path | None,
    missing_length: str,
    resume: bool,
    overwrite: bool,
    quiet: bool,
    **reader_options: Any,
) -> None:
    """Assemble INPUT (a GEO supplementary folder, or its uncompressed RAW.tar) into OUTDIR.

    Writes the platform template (expressionMatrix_rawCounts.mtx, cellID_rawCounts.tsv,
    genes_rawCounts.tsv, cellAnnotation.tsv) and OUTDIR/<name>.h5ad. Nothing is written to
    OUTDIR until every input has been read; each file appears complete or not at all.
    Exit status: 0 on success, 1 on an input or output error (named on stderr), 2 on a usage error.
    """
    from ._cache import remove_cache
    from ._outdir import check_cache_folder, check_targets, outdir_lock, previous_outputs
    from .assemble import estimate_matrix_bytes, read_gse_dir
    from .errors import GseioError
    from .export._atomic import WRITE_ERRNOS, output_error
    from .export._publish import publish, staging_folder
    from .export.template import RAW_FILES, TPM_FILES
    from .report import REPORT_NAME

    started = time.perf_counter()
    if tpm and not protocol:
        raise click.UsageError("--tpm needs --protocol (e.g. --protocol smart-seq2)")
    h5ad_name = h5ad_name_of(name, input_dir)  # a plain file name: the h5ad lands inside OUTDIR
    cache, created, backed = outdir / CACHE_FOLDER, not os.path.lexists(outdir), None
    try:
        # everything that can stop the build at the output folder is checked before any input is read
        with outdir_lock(outdir), quiet_hdf5():
            check_targets(outdir, [*RAW_FILES, *(TPM_FILES if tpm else ()), h5ad_name], overwrite=overwrite)
            if resume:
                check_cache_folder(cache)
            budget = parse_size(max_memory) if max_memory else default_budget()
            with staging_folder(outdir) as staging, final_paths(staging, outdir):
                # OUTDIR inside INPUT is never read back: the previous outputs would be read as input
                estimate = estimate_matrix_bytes(input_dir, pattern=pattern, exclude=[outdir])
                table = None
                if gtf is not None:
                    from .genes import gene_table

                    table = gene_table(gtf)
                backed = staging / h5ad_name if estimate > budget else None
                adata = read_gse_dir(
                    input_dir,
                    pattern=pattern,
                    exclude=[outdir],
                    format=format_,
                    on_error=on_error,  # type: ignore[arg-type]
                    duplicate_genes=duplicate_genes,  # type: ignore[arg-type]
                    gene_order=gene_order,  # type: ignore[arg-type]
                    gene_ids=gene_ids,  # type: ignore[arg-type]
                    gene_table=table,
                    allow_mixed=allow_mixed,
                    backed=backed,
                    cache_dir=cache if resume else None,
                    n_jobs=jobs,
                    progress=not quiet and sys.stderr.isatty(),
                    **_given(reader_options),
                )
                nnz = stored_values(adata)
                if tpm:
                    from . import pp

                    lengths = None if table is None else table["length"]
                    pp.tpm(adata, protocol=protocol, lengths=lengths, missing_length=missing_length)  # type: ignore[arg-type]
                staged = write_outputs(adata, staging, h5ad_name, tpm=tpm, gene_table=table, outdir=outdir,
                                       reclaim=lambda: remove_cache(cache))  # fmt: skip
                report = checked_report(adata, staging, h5ad_name, staged, outdir=outdir)
                produced = [p.name for p in staged] + [REPORT_NAME]
                remove_cache(cache)  # complete: the parsed units are not needed any more
                publish(staging, outdir, produced=produced, drop=previous_outputs(outdir), last=REPORT_NAME)
                outputs = [outdir / name for name in produced]
    except OSError as e:  # a write of the out-of-core h5ad met a full disk or a read-only file system
        if e.errno not in WRITE_ERRNOS:
            raise
        _fail(output_error(e, outdir), outdir=outdir, created=created, backed=True)
    except GseioError as e:
        _fail(e, outdir=outdir, created=created, backed=backed is not None)
    mode = (f"out of core (the result may reach {estimate / 1e9:.1f} GB, over the {budget / 1e9:.1f} GB budget)"
            if backed is not None else "in memory")  # fmt: skip
    if not quiet:
        click.echo(
            build_summary(
                adata=adata,
                nnz=nnz,
                input_dir=input_dir,
                outputs=outputs,
                seconds=time.perf_counter() - started,
                mode=mode,
                report=report,
            )
        )


@main.command()
@click.argument("input_dir", metavar="INPUT", type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
@click.option("--pattern", default=None, help="Only consider files whose path matches this glob.")
@click.option("--format", "format_", default=None, metavar="FORMAT", help="Read every file as this format.")
@click.option("--no-read", is_flag=True, help="Only group files and detect formats; do not parse them.")
@_reader_options
def inspect(input_dir: Path, as_json: bool, pattern: str | None, format_: str | None, no_read: bool,
            **reader_options: Any) -> None:  # fmt: skip
    """Show what 'gseio build INPUT' would read, without building anything.

    One line per unit (one per-cell file, one 10x triplet, ...): its format, sample, cells,
    genes, non-zeros and the reader's decisions (orientation, strandedness, ...); then the
    files set aside and why, and the files no reader recognises.
    """
    import json

    from .errors import GseioError
    from .inspect import inspect_input

    try:
        manifest = inspect_input(
            input_dir, pattern=pattern, format=format_, read=not no_read, **_given(reader_options)
        )
    except GseioError as e:
        _fail(e)
    if as_json:
        click.echo(json.dumps(manifest, indent=2, default=str))
        return
    click.echo(manifest_table(manifest))


@main.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--cells-per-plate", default=48, show_default=True, help="Cells (files) per plate; 3 plates.")
@click.option("--seed", default=0, show_default=True, help="Random seed.")
def demo(path: Path, cells_per_plate: int, seed: int) -> None:
    """Write a small generated GEO-style folder of per-cell Smart-seq2 count files to PATH.

    Then build it with: gseio build PATH -o OUTDIR
    """
    from .demo import make_demo

    try:
        folder = make_demo(path, cells_per_plate=cells_per_plate, seed=seed)
    except FileExistsError as e:
        _fail(e)
    n = sum(1 for p in folder.iterdir() if p.name.endswith(".gz"))
    click.echo(f"demo: wrote {n} per-cell count files to {folder}")


@main.command("gene-table")
@click.argument("gtf", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The TSV to write.")  # fmt: skip
@click.option("--overwrite", is_flag=True, help="Replace the output if it exists.")
def gene_table_command(gtf: Path, output: Path, overwrite: bool) -> None:
    """Write a gene table from a (gzipped) GTF: the platform's Gene_ID, Gene_name, Gene_length columns.

    Lengths are the union of each gene's exons (featureCounts' Length); the table also holds
    gene_id_version, biotype and chromosome. Use it with 'gseio build --tpm --gtf TABLE'.
    """
    from .errors import GseioError, OutputError
    from .export._atomic import atomic_outputs
    from .genes import gene_table

    try:
        if output.exists() and not overwrite:
            raise OutputError("exists already; pass --overwrite to replace it", path=output)
        table = gene_table(gtf)
        frame = table.reset_index().rename(
            columns={"gene_id": "Gene_ID", "gene_symbol": "Gene_name", "length": "Gene_length"}
        )
        frame = frame[["Gene_ID", "Gene_name", "Gene_length", "gene_id_version", "biotype", "chromosome"]]
        with atomic_outputs([output]) as (tmp,):
            frame.to_csv(tmp, sep="\t", index=False, lineterminator="\n", na_rep="")
    except GseioError as e:
        _fail(e)
    click.echo(f"gene-table: {len(frame):,} genes from {gtf} -> {output}")


@main.command()
def formats() -> None:
    """List the input formats gseio recognises (kind: single_cell, bulk, or qc = recognised, set aside)."""
    from ._registry import all_formats

    for spec in all_formats():
        click.echo(f"{spec.name:<22} {spec.kind:<12} {spec.description}")
