"""The ``gseio`` command line.

``gseio build INPUT_DIR -o OUTDIR`` assembles a GEO supplementary folder and writes
the platform template plus ``OUTDIR/<name>.h5ad``; ``gseio demo DIR`` writes the demo
folder; ``gseio formats`` lists the input formats. Heavy libraries are imported
inside the commands so that ``--help`` answers at once.
"""

from __future__ import annotations

import shutil
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, get_args

import click

from ._options import DuplicateGenes, GeneOrder, OnError
from ._version import __version__

F = TypeVar("F", bound=Callable[..., Any])

EXIT_ERROR = 1


def _choice(flag: str, choices: Any, help: str) -> Callable[[F], F]:
    """A ``click.Choice`` option built from the API's ``Literal`` type; its first value is the default."""
    values = list(get_args(choices))
    return click.option(flag, type=click.Choice(values), default=values[0], show_default=True, help=help)


def _fail(error: Exception) -> None:
    click.echo(f"error: {error}", err=True)
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


def _summary(*, adata: Any, input_dir: Path, outputs: list[Path], seconds: float) -> str:
    prov = adata.uns["gseio"]
    nnz = adata.X.nnz
    density = nnz / max(1, adata.n_obs * adata.n_vars)
    skipped = list(zip(prov["skipped_files"], prov["skipped_reasons"], strict=True))
    lines = [
        f"gseio build: {input_dir} -> {outputs[0].parent}",
        f"  cells       {adata.n_obs:,}",
        f"  genes       {adata.n_vars:,}",
        f"  non-zeros   {nnz:,} ({density:.1%} of the matrix)",
        f"  files read  {len(prov['files']):,} (skipped {len(skipped)}, ignored {len(prov['ignored_files'])})",
        f"  time        {seconds:.1f} s",
        "  outputs     " + ", ".join(p.name for p in outputs),
    ]
    if prov["n_duplicate_gene_rows"]:
        lines.append(
            f"  note        {prov['n_duplicate_gene_rows']} rows repeated a gene name in their file "
            f"(policy: {prov['options']['duplicate_genes']})"
        )
    for rel, why in skipped[:10]:
        lines.append(f"  skipped     {rel}: {why}")
    if len(skipped) > 10:
        lines.append(f"  skipped     ... and {len(skipped) - 10} more (see uns['gseio'] in the h5ad)")
    ignored = list(zip(prov["ignored_files"], prov["ignored_reasons"], strict=True))
    for rel, why in ignored[:5]:
        lines.append(f"  ignored     {rel}: {why}")
    if len(ignored) > 5:
        lines.append(f"  ignored     ... and {len(ignored) - 5} more")
    return "\n".join(lines)


@main.command()
@click.argument("input_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
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
    overwrite: bool,
    quiet: bool,
) -> None:
    """Assemble INPUT_DIR (a GEO supplementary folder) into OUTDIR.

    Writes the platform template (expressionMatrix_rawCounts.mtx, cellID_rawCounts.tsv,
    genes_rawCounts.tsv, cellAnnotation.tsv) and OUTDIR/<name>.h5ad. Nothing is written to
    OUTDIR until every input has been read; each file appears complete or not at all.
    Exit status: 0 on success, 1 on an input or output error (named on stderr), 2 on a usage error.
    """
    from .assemble import read_gse_dir
    from .errors import GseioError, OutputError
    from .export.template import RAW_FILES

    started = time.perf_counter()
    name = name or input_dir.resolve().name
    h5ad_name = name if name.endswith(".h5ad") else f"{name}.h5ad"
    targets = [outdir / n for n in (*RAW_FILES, h5ad_name)]
    try:
        existing = [p.name for p in targets if p.exists()]
        if existing and not overwrite:
            raise OutputError(
                f"outputs exist already ({', '.join(existing)}); pass --overwrite to replace them",
                path=outdir,
            )
        adata = read_gse_dir(
            input_dir,
            pattern=pattern,
            format=format_,
            on_error=on_error,  # type: ignore[arg-type]
            duplicate_genes=duplicate_genes,  # type: ignore[arg-type]
            gene_order=gene_order,  # type: ignore[arg-type]
            progress=not quiet and sys.stderr.isatty(),
        )
        outputs = _write_outputs(adata, outdir, h5ad_name)
    except GseioError as e:
        _fail(e)
    if not quiet:
        click.echo(
            _summary(adata=adata, input_dir=input_dir, outputs=outputs, seconds=time.perf_counter() - started)
        )


def _write_outputs(adata: Any, outdir: Path, h5ad_name: str) -> list[Path]:
    """Write everything into a hidden staging folder inside ``outdir``, then move it into place."""
    import os

    from .export.h5ad import write_h5ad
    from .export.template import write_template

    outdir.mkdir(parents=True, exist_ok=True)
    staging = outdir / f".gseio-staging-{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    try:
        staged = write_template(adata, staging)
        staged.append(write_h5ad(adata, staging / h5ad_name))
        finals = [outdir / p.name for p in staged]
        for src, dst in zip(staged, finals, strict=True):
            os.replace(src, dst)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return finals


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


@main.command()
def formats() -> None:
    """List the input formats gseio recognises."""
    from ._registry import get_format, list_formats

    for fmt in list_formats():
        click.echo(f"{fmt:<14} {get_format(fmt).description}")
