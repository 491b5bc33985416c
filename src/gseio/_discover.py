"""Find the inputs of a GEO supplementary folder (or RAW.tar) and group them into units.

Two steps: :func:`list_sources` (:mod:`gseio._listing`) lists the files (or tar members)
and sets aside those that are never read, each with the reason; :func:`plan_units` lets every
format with a grouping function claim its multi-file units (10x triplets, ...), then
detects the format of each remaining file from its content.
"""

from __future__ import annotations

import fnmatch
import zipfile
from dataclasses import dataclass, field

from . import _open, _registry, _warn
from ._source import Source
from ._unit import Unit
from .errors import DuplicateInputError, GseioError, InputError
from .geo import file_stem, gsm_accession, sample_of_path

#: File-name patterns (lower case) that are never expression data, with the reason.
IGNORED_NAMES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("readme*", "*.md", "*.rst", "*.pdf", "*.doc", "*.docx", "*.html", "*.htm"), "documentation"),
    (("filelist.txt", "*.md5", "md5sum*", "*checksum*", "*.sha256"), "file list or checksums"),
    (("*.png", "*.jpg", "*.jpeg", "*.gif", "*.tif", "*.tiff", "*.svg", "*.bmp"), "image"),
    (
        (
            "*series_matrix.txt",
            "*series_matrix.txt.gz",
            "*.soft",
            "*.soft.gz",
            "*.miniml.xml",
            "*.xml",
            "*.xml.gz",
        ),
        "GEO metadata (series matrix, SOFT or MINiML), not counts",
    ),
    (
        ("*.tar", "*.tar.gz", "*.tgz", "*.tar.bz2", "*.tbz2", "*.tar.xz", "*.txz", "*.tar.zst", "*.7z", "*.rar"),
        "nested archive: never opened; extract it and read the extracted folder (a plain .tar can also be "
        "read on its own with read_gse_dir)",
    ),
    (
        ("*.json", "*.yaml", "*.yml", "*.log", "*.py", "*.r", "*.rmd", "*.ipynb", "*.sh"),
        "not expression data (metadata, log or code)",
    ),
)


def ignore_reason(name: str) -> str | None:
    """Why a file of this name is not expression data, or ``None`` if it may be."""
    if name.startswith("."):
        return "hidden file"
    lower = name.lower()
    for patterns, reason in IGNORED_NAMES:
        if any(fnmatch.fnmatchcase(lower, p) for p in patterns):
            return reason
    return None


def group_units(sources: list[Source], *, format: str | None = None) -> tuple[list[Unit], list[Source]]:
    """Let formats with a grouping function claim multi-file units; return them and the rest."""
    specs = [_registry.get_format(format)] if format is not None else _registry.all_formats()
    units: list[Unit] = []
    rest = list(sources)
    for spec in specs:
        if spec.group is not None and rest:
            claimed, rest = spec.group(rest)
            units.extend(claimed)
    return units, rest


@dataclass
class Plan:
    """What a build will read: units in order, files set aside, files no reader recognised."""

    units: list[Unit] = field(default_factory=list)
    ignored: list[tuple[str, str]] = field(default_factory=list)
    failures: list[tuple[Source, InputError]] = field(default_factory=list)


def plan_units(sources: list[Source], *, format: str | None = None) -> Plan:
    """Group ``sources`` into units and detect each single file's format.

    With ``format``, only that format groups files and every remaining file is read as
    that format. Files whose format cannot be told (or that cannot be read at all) are
    returned in :attr:`Plan.failures` with the error, for the caller's error policy.
    """
    plan = Plan()
    plan.units, rest = group_units(sources, format=format)
    for source in rest:
        if format is None and (reason := ignore_reason(source.name)) is not None:
            plan.ignored.append((source.rel, reason))
            continue
        try:
            name = format if format is not None else _registry.detect_format(source)
        except InputError as e:
            if format is None and (reason := archive_reason(source)) is not None:
                plan.ignored.append((source.rel, reason))  # archives are reported, never followed
            else:
                plan.failures.append((source, e))
            continue
        spec = _registry.get_format(name)
        if spec.kind == "qc":
            plan.ignored.append((source.rel, f"{spec.description}: not expression data"))
            continue
        plan.units.append(
            Unit(format=name, sources={"data": source}, name=source.rel, sample=sample_of_path(source.rel))
        )
    plan.units = _distinct_samples(sorted(plan.units, key=lambda u: u.name))
    _set_aside_gseio_outputs(plan)
    plan.ignored.sort()
    return plan


def built_from(source: Source) -> tuple[str, list[str]] | None:
    """The input and unit names an ``.h5ad`` written by gseio was built from (its ``uns/gseio``), or ``None``."""
    from .readers._hdf5 import H5PY_ERRORS

    try:
        with _open.open_hdf5(source) as f:
            record = f.get("uns/gseio")
            if record is None or "files" not in record or "version" not in record:
                return None
            names = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in record["files"][()]]
            where = record["input"][()] if "input" in record else b""
    except (InputError, *H5PY_ERRORS):  # unreadable or unsafe: its reader says why
        return None
    return (where.decode("utf-8", "replace") if isinstance(where, bytes) else str(where)), names


def _set_aside_gseio_outputs(plan: Plan) -> None:
    """An ``.h5ad`` written by gseio among other inputs never doubles their cells silently.

    Such a file is a build's output: its cells are those of the files it was built from.
    When some of those (by unit name) are inputs here too, it is a
    :class:`~gseio.errors.DuplicateInputError` (a failure: raised, or skipped with
    ``on_error="skip"``, while those files are read); otherwise it is read, with a warning.
    Alone, it is read as any ``.h5ad``.
    """
    if len(plan.units) + len(plan.failures) < 2:
        return
    names = {u.name for u in plan.units} | {s.rel for s, _ in plan.failures}
    for unit in [u for u in plan.units if u.format == "h5ad"]:
        if (found := built_from(unit.main)) is None:
            continue
        where, built = found
        shared = sorted(set(built) & (names - {unit.name}))
        what = f"written by gseio (a build of {len(built)} units from {where})"
        if shared:
            listed = ", ".join(shared[:3]) + (f" and {len(shared) - 3} more" if len(shared) > 3 else "")
            error = DuplicateInputError(
                f"{what}: it holds the cells of {len(shared)} files read here too ({listed}), which would be "
                "counted twice. Move it out of the input (it is an output), or pass on_error='skip' to read the "
                "files only",
                path=unit.main,
            )
            plan.units.remove(unit)
            plan.failures.append((unit.main, error))
        else:
            _warn.warn(
                f"{unit.main}: {what}, read as one input among the others; none of the files it was built from "
                "is here, but if some are under other names, their cells are counted twice: then move it out of "
                "the input"
            )


def archive_reason(source: Source) -> str | None:
    """Why a file no reader recognised is an archive gseio does not open, or ``None``.

    A zip of several files, or a tar, 7-Zip or RAR archive (compressed or not, whatever
    its name) is set aside with this reason: archives inside the input are never followed.
    """
    try:
        kind = _open.detect_compression(source)
        if kind == "zip":
            with source.open() as raw, zipfile.ZipFile(raw) as zf:
                n = sum(not info.is_dir() for info in zf.infolist())
            if n != 1:
                return f"zip archive of {n} files (not one zipped file): never opened; unzip it and read the files"
        with _open.open_decompressed(source) as fh:
            head = fh.read(512)
    except (GseioError, OSError, ValueError, RuntimeError, NotImplementedError, zipfile.BadZipFile):
        return None  # not an archive that can be told: the caller's error stands
    packed = "" if kind == "none" else f" ({kind}-compressed)"
    for found, what in (
        (head[257:262] == b"ustar", "tar"),
        (head.startswith(b"7z\xbc\xaf\x27\x1c"), "7-Zip"),
        (head.startswith(b"Rar!\x1a\x07"), "RAR"),
    ):
        if found:
            return f"{what} archive{packed}: never opened; extract it and read the extracted folder"
    return None


def _distinct_samples(units: list[Unit]) -> list[Unit]:
    """Give units that would share a sample name without sharing a GSM a name of their own.

    Two ``filtered_feature_bc_matrix.h5`` in two folders are two samples: they are named
    by their path (without suffixes) instead, so that their cells stay apart.
    """
    from collections import Counter
    from dataclasses import replace

    counts = Counter(u.sample for u in units)
    clash = {s for s, n in counts.items() if n > 1 and gsm_accession(s) is None}
    return [replace(u, sample=file_stem(u.name)) if u.sample in clash else u for u in units]
