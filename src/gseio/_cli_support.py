"""What the ``gseio`` commands share: outputs staged and moved into place, the summary, sizes."""

from __future__ import annotations

import contextlib
import copy
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from .errors import GseioError


def stored_values(adata: Any) -> int:
    """Non-zeros of ``X``, in memory or backed (read from ``indptr``, not the data)."""
    if not adata.isbacked:
        return int(adata.X.nnz)
    import h5py

    with h5py.File(adata.filename, "r") as f:
        return int(f["X/indptr"][-1])


def build_summary(
    *, adata: Any, nnz: int, input_dir: Path, outputs: list[Path], seconds: float, mode: str,
    report: dict[str, Any] | None = None,
) -> str:  # fmt: skip
    """The one-screen summary ``gseio build`` ends with (``report``: the checked build report)."""
    prov = adata.uns["gseio"]
    reused = int(prov.get("units_from_cache", 0))
    density = nnz / max(1, adata.n_obs * adata.n_vars)
    skipped = list(zip(prov["skipped_files"], prov["skipped_reasons"], strict=True))
    lines = [
        f"gseio build: {input_dir} -> {outputs[0].parent}",
        f"  cells       {adata.n_obs:,}",
        f"  genes       {adata.n_vars:,}",
        f"  non-zeros   {nnz:,} ({density:.1%} of the matrix)",
        f"  files read  {len(prov['files']):,} (skipped {len(skipped)}, ignored {len(prov['ignored_files'])}"
        + (f", {reused:,} reused from an interrupted build)" if reused else ")"),
        f"  time        {seconds:.1f} s, {mode}",
        "  outputs     " + ", ".join(p.name for p in outputs),
    ]
    if report is not None and report.get("conservation", {}).get("ok"):
        expected = report["conservation"]["expected"]
        lines.append(
            f"  checked     the outputs, re-read, hold all {expected['cells']:,} cells and "
            f"{expected['total_counts']:,.0f} counts read (build_report.json)"
        )
    genes = prov.get("genes", {})
    flags = [f"{genes[key]:,} {label}" for key, label in (
        ("n_ensembl_versions_stripped", "Ensembl versions stripped"), ("n_spike_ins", "spike-ins flagged"),
        ("n_excel_dates", "date-like symbols (spreadsheet damage?)")) if genes.get(key)]  # fmt: skip
    if flags:
        lines.append("  gene ids    " + ", ".join(flags))
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


def h5ad_name_of(name: str | None, input_dir: Path) -> str:
    """The h5ad's file name, from ``--name`` or the input's name; a usage error unless it is a plain file name."""
    from ._outdir import h5ad_file_name

    try:
        return h5ad_file_name(output_stem(input_dir) if name is None else name)
    except ValueError as e:
        hint = "pass --name" if name is None else "pass a plain file name"
        raise click.BadParameter(f"{e}; {hint}", param_hint="--name") from None


def output_stem(path: Path) -> str:
    """The name outputs take from the input: the folder's name, or the tar's without ``.tar``."""
    name = path.resolve().name
    for suffix in (".tar",):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def manifest_table(manifest: dict[str, Any]) -> str:
    rows = [("unit", "format", "sample", "cells", "genes", "non-zeros", "notes")]
    for u in manifest["units"]:
        notes = u.get("error") or "; ".join(f"{k}: {v}" for k, v in u.get("notes", {}).items())
        counts = [f"{u[key]:,}" if key in u else "?" for key in ("cells", "genes", "nnz")]
        rows.append((u["unit"], u["format"], u["sample"], *counts, notes))
    widths = [min(48, max(len(str(r[i])) for r in rows)) for i in range(6)]
    lines = [f"{manifest['input']}: {len(manifest['units'])} units"]
    for row in rows:
        lines.append("  ".join(str(v)[:48].ljust(w) for v, w in zip(row[:6], widths, strict=True)) + "  " + row[6])
    for entry in manifest["ignored"]:
        lines.append(f"ignored       {entry['file']}: {entry['reason']}")
    for entry in manifest["unrecognised"]:
        lines.append(f"unrecognised  {entry['file']}: {entry['reason']}")
    return "\n".join(lines)


def write_outputs(
    adata: Any, staging: Path, h5ad_name: str, *, tpm: bool = False, gene_table: Any = None,
    outdir: Path | None = None, reclaim: Callable[[], None] | None = None,
) -> list[Path]:  # fmt: skip
    """Write the outputs into ``staging`` (the h5ad is there already for a backed build).

    First checks that they fit in the free space (``reclaim`` may free the resume cache
    for them); errors name ``outdir`` (default: ``staging``).
    """
    from ._outdir import check_space
    from .export._sizes import h5ad_bytes, template_bytes
    from .export.h5ad import write_h5ad
    from .export.template import write_template

    needed = template_bytes(adata, tpm=tpm) + (0 if adata.isbacked else h5ad_bytes(adata))
    check_space(staging, needed, outdir=outdir or staging, reclaim=reclaim)
    staged = write_template(adata, staging, tpm=tpm, gene_table=gene_table)
    staged.append(staging / h5ad_name if adata.isbacked else write_h5ad(adata, staging / h5ad_name))
    if adata.isbacked:
        adata.file.close()  # the file moves next
    return staged


def checked_report(
    adata: Any, staging: Path, h5ad_name: str, outputs: list[Path], *, outdir: Path | None = None
) -> dict[str, Any]:
    """The build report, with the conservation check of the staged outputs (re-read from disk).

    Raises :class:`~gseio.report.ConservationError` (after writing the failed report to
    ``staging``, and moving it to ``outdir`` when given) when the outputs do not hold the
    cells, names and counts that were read.
    """
    from .report import REPORT_NAME, ConservationError, build_report, check_outputs, write_build_report

    report = build_report(adata)
    report["outputs"] = [{"file": p.name, "bytes": p.stat().st_size} for p in outputs]
    try:
        report["conservation"] = check_outputs(
            report, h5ad=staging / h5ad_name, template=staging, cells=adata.obs_names, genes=adata.var_names
        )
    except ConservationError as e:
        report["conservation"] = getattr(e, "section", {"ok": False, "problems": [str(e)]})
        write_build_report(report, staging / REPORT_NAME)
        if outdir is not None:
            keep_failed_report(staging, outdir)
        raise
    write_build_report(report, staging / REPORT_NAME)
    return report


_TEMPORARY = re.compile(r"^\.(?P<stem>.+)\.tmp-[0-9a-f]{12}(?P<suffix>\.[^.]*)?$")


def _final_name(path: str, staging: Path, outdir: Path) -> str:
    """``path`` with ``staging`` replaced by ``outdir``, and a temporary file by its final name."""
    try:
        rel = Path(path).relative_to(staging)
    except ValueError:
        return path
    parts = list(rel.parts)
    if parts and (match := _TEMPORARY.match(parts[-1])):
        parts[-1] = match["stem"] + (match["suffix"] or "")
    return os.fspath(outdir.joinpath(*parts))


@contextlib.contextmanager
def final_paths(staging: Path, outdir: Path) -> Iterator[None]:
    """Errors raised in the body name the outputs where they were going (``outdir``), never the staging folder.

    The staging folder is removed before the user reads the message; a path into it
    would point nowhere.
    """
    try:
        yield
    except GseioError as e:
        if e.path is None and str(staging) not in e.reason:
            raise
        renamed = copy.copy(e)
        renamed.path = None if e.path is None else _final_name(e.path, staging, outdir)
        renamed.reason = e.reason.replace(str(staging), str(outdir))
        renamed.args = (f"{renamed.path}: {renamed.reason}" if renamed.path is not None else renamed.reason,)
        raise renamed from e


_UNITS = {"": 1, "B": 1, "K": 1e3, "KB": 1e3, "M": 1e6, "MB": 1e6, "G": 1e9, "GB": 1e9, "T": 1e12, "TB": 1e12,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}  # fmt: skip


def parse_size(text: str) -> int:
    """``"2GB"``, ``"512 MiB"``, ``"1e9"`` -> bytes."""
    import re

    match = re.fullmatch(r"\s*([0-9.eE+]+)\s*([A-Za-z]*)\s*", text)
    if match is None or match.group(2).upper() not in _UNITS:
        raise click.BadParameter(f"{text!r} is not a size such as 2GB or 512MiB", param_hint="--max-memory")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def default_budget() -> int:
    """Half of this machine's memory: the default ``--max-memory``."""
    import os

    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 4 * 10**9


def attribute_docs(cls: type) -> dict[str, str]:
    """First sentence of each attribute in a numpydoc ``Attributes`` section."""
    docs: dict[str, str] = {}
    lines = (cls.__doc__ or "").split("Attributes", 1)[-1].splitlines()
    name = None
    for line in lines:
        stripped = line.strip()
        if not stripped or set(stripped) == {"-"}:
            continue
        if line.startswith("    ") and not line.startswith("        "):
            name = stripped
            docs[name] = ""
        elif name is not None:
            docs[name] = (docs[name] + " " + stripped).strip()
    return {k: v.replace("``", "") for k, v in docs.items()}


def number_or_none(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A click callback: ``value`` must be a positive number or ``"none"``."""
    if value is None or value.strip().lower() == "none":
        return value
    try:
        if float(value) > 0:
            return value
    except ValueError:
        pass
    raise click.BadParameter(f"{value!r} is not a positive number or 'none'")


def keep_failed_report(staging: Path, outdir: Path) -> None:
    """Move the report of outputs that failed the conservation check to ``OUTDIR/build_report.failed.json``."""
    from .export._atomic import output_error
    from .report import FAILED_REPORT_NAME, REPORT_NAME

    try:
        outdir.mkdir(parents=True, exist_ok=True)
        os.replace(staging / REPORT_NAME, outdir / FAILED_REPORT_NAME)
    except OSError as e:
        raise output_error(e, outdir / FAILED_REPORT_NAME) from e


def clean_after_failure(error: BaseException, *, outdir: Path, cache: Path, created: bool) -> None:
    """After a full disk: remove the resume cache, and ``outdir`` if this build made it and it is empty."""
    from ._cache import remove_cache
    from .export._atomic import disk_full

    if not disk_full(error):
        return  # the cache is kept for --resume
    remove_cache(cache)
    if created:
        with contextlib.suppress(OSError):
            outdir.rmdir()  # only if empty


def hdf5_left_open() -> bool:
    """Whether HDF5 still holds objects open (after a failed write they cannot be closed)."""
    import gc
    import sys

    h5py = sys.modules.get("h5py")
    if h5py is None:
        return False
    gc.collect()  # objects merely unreferenced close now
    try:
        return int(h5py.h5f.get_obj_count(h5py.h5f.OBJ_ALL, h5py.h5f.OBJ_ALL)) > 0
    except Exception:  # a library in that state may fail anyhow: assume the worst
        return True


def _from_h5py(tb: Any) -> bool:
    while tb is not None:
        if "h5py" in tb.tb_frame.f_code.co_filename:
            return True
        tb = tb.tb_next
    return False


@contextlib.contextmanager
def quiet_hdf5() -> Iterator[None]:
    """Keep h5py's clean-up errors of a failed write (hundreds of lines) off the terminal: the error says it once.

    h5py meets them while freeing objects, and reports each through :func:`sys.excepthook`
    (its traceback) and :data:`sys.unraisablehook`; the others go on to the previous hooks.
    """
    import logging
    import sys

    log = logging.getLogger("gseio")
    previous_unraisable, previous_except = sys.unraisablehook, sys.excepthook

    def unraisable(info: Any) -> None:
        if _from_h5py(info.exc_traceback) or "h5py" in repr(info.object):
            log.debug("h5py, freeing an object: %s", info.exc_value)
        else:
            previous_unraisable(info)

    def excepthook(kind: Any, value: Any, tb: Any) -> None:
        if _from_h5py(tb):
            log.debug("h5py, freeing an object: %s", value)
        else:
            previous_except(kind, value, tb)

    sys.unraisablehook, sys.excepthook = unraisable, excepthook
    try:
        yield
    finally:
        sys.unraisablehook, sys.excepthook = previous_unraisable, previous_except
