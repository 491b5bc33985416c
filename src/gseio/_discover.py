"""Find the inputs of a GEO supplementary folder (or RAW.tar) and group them into units.

Two steps: :func:`list_sources` lists the files (or tar members) and sets aside those
that are never expression data, each with the reason; :func:`plan_units` lets every
format with a grouping function claim its multi-file units (10x triplets, ...), then
detects the format of each remaining file from its content.
"""

from __future__ import annotations

import fnmatch
import os
import re
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from . import _open, _registry
from ._source import Source
from ._unit import Unit
from .errors import FormatError, GseioError, InputError
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


def _matches(rel: str, pattern: str) -> bool:
    return fnmatch.fnmatch(rel, pattern) or fnmatch.fnmatch(PurePosixPath(rel).name, pattern)


def _folder_sources(root: Path) -> tuple[list[Source], list[tuple[str, str]]]:
    sources, ignored = [], []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in [d for d in dirnames if Path(dirpath, d).is_symlink()]:  # os.walk would skip it: say so
            dirnames.remove(name)
            rel = Source.file(Path(dirpath, name), root=root).rel
            ignored.append((rel, "symbolic link to a folder: not followed"))
        for name in filenames:
            path = Path(dirpath, name)
            source = Source.file(path, root=root)
            if path.is_symlink() and not path.resolve().is_relative_to(root.resolve()):
                ignored.append((source.rel, "symbolic link leading out of the input folder"))
            elif not path.is_file():
                ignored.append((source.rel, "not a regular file"))
            else:
                sources.append(source)
    return sources, ignored


_UNSAFE = re.compile(r"^(?:[/\\]|[A-Za-z]:)|(?:^|[/\\])\.\.(?:[/\\]|$)")


def _member_problem(member: tarfile.TarInfo) -> str | None:
    """Why a tar member is never read (unsafe path, link, device, ...), or ``None`` for a regular file."""
    if _UNSAFE.search(member.name):
        return "unsafe member path (absolute or with '..'): never read or written"
    if member.issym() or member.islnk():
        kind = "symbolic" if member.issym() else "hard"
        return f"not a regular file ({kind} link to {member.linkname!r}): never followed"
    if member.ischr() or member.isblk():
        return "not a regular file (device file): never read"
    if member.isfifo():
        return "not a regular file (FIFO): never read"
    if member.issparse():
        return "sparse member: cannot be read in place; extract the archive with tar and read the folder"
    if not member.isfile() and not member.isdir():
        return "not a regular file: never read"
    return None


def _tar_sources(tar_path: Path) -> tuple[list[Source], list[tuple[str, str]]]:
    if _open.detect_compression(tar_path) != "none":
        raise InputError(
            "a compressed tar cannot be read in place; decompress it to a plain .tar (GEO's RAW.tar is "
            "uncompressed) or extract it and read the folder",
            path=tar_path,
        )
    found: dict[str, Source] = {}
    ignored: list[tuple[str, str]] = []
    members: list[tarfile.TarInfo] = []
    cut_short = False
    try:
        with tarfile.open(tar_path, mode="r:") as tar:
            try:
                members.extend(tar)
            except tarfile.ReadError:  # "unexpected end of data": the members listed so far are kept
                if not members:
                    raise
                cut_short = True
            end = tar.offset
    except tarfile.TarError as e:
        raise FormatError(f"not a readable tar archive: {e}", path=tar_path) from e
    size = tar_path.stat().st_size
    for member in members:
        if (problem := _member_problem(member)) is not None:
            ignored.append((member.name, problem))
        elif member.isfile():  # directories are not reported
            if member.name in found:  # as extraction would, the later copy wins
                ignored.append((member.name, "listed again later in the archive: the later copy is read"))
            found[member.name] = Source(tar_path, member.name, offset=member.offset_data, size=member.size)
            cut_short |= member.offset_data + member.size > size
    if cut_short or _damaged_tail(tar_path, end, size):
        last = members[-1].name if members else "its start"
        ignored.append((tar_path.name, f"the archive is cut short or damaged after {last}: later members, if "
                        "any, are missing, and a member cut short fails to read; download it again"))  # fmt: skip
    return list(found.values()), ignored


def _damaged_tail(tar_path: Path, end: int, size: int) -> bool:
    """Whether the end-of-archive zeros after the last member are missing or not zeros.

    ``tarfile`` silently stops at a header cut short or damaged: this tells it apart.
    """
    with open(tar_path, "rb") as fh:
        fh.seek(end)
        tail = fh.read(min(size - end, 1 << 20))
    return len(tail) < 512 or bool(tail.strip(b"\x00"))


def list_sources(path: Path, *, pattern: str | None = None) -> tuple[list[Source], list[tuple[str, str]]]:
    """List the candidate inputs of a folder (recursively) or an uncompressed tar.

    Returns
    -------
    The sources, sorted by relative path, and ``(relative path, reason)`` for every file
    set aside (by ``pattern``, or because it is unsafe or not a regular file). Files that
    are never data by their name are set aside later, by :func:`plan_units`, once
    multi-file units (which may include e.g. a ``run_info.json``) have claimed theirs.
    """
    if path.is_dir():
        found, ignored = _folder_sources(path)
    elif path.is_file() and tarfile.is_tarfile(path):
        found, ignored = _tar_sources(path)
    else:
        raise InputError("neither a folder nor a tar archive; read a single file with gseio.read()", path=path)
    sources = []
    for source in found:
        if pattern is not None and not _matches(source.rel, pattern):
            ignored.append((source.rel, f"does not match pattern {pattern!r}"))
            continue
        sources.append(source)
    sources.sort(key=lambda s: s.rel)
    ignored.sort()
    return sources, ignored


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
    plan.ignored.sort()
    return plan


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
