"""Find the count files in a GEO supplementary folder, and say why others are left out."""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

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
        ("*.tar", "*.tar.gz", "*.tgz", "*.tar.bz2", "*.tar.xz"),
        "archive: extract it (tar xf) and build the folder",
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


def discover(root: Path, *, pattern: str | None = None) -> tuple[list[Path], list[tuple[str, str]]]:
    """List candidate count files under ``root``, recursively, sorted by relative path.

    Returns
    -------
    The files to read, and ``(relative path, reason)`` for every file left out.
    """
    files: list[tuple[str, Path]] = []
    ignored: list[tuple[str, str]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            path = Path(dirpath, name)
            rel = path.relative_to(root).as_posix()
            if not path.is_file():
                ignored.append((rel, "not a regular file"))
                continue
            if pattern is not None:
                if not (fnmatch.fnmatch(rel, pattern) or fnmatch.fnmatch(name, pattern)):
                    ignored.append((rel, f"does not match pattern {pattern!r}"))
                    continue
            elif (reason := ignore_reason(name)) is not None:
                ignored.append((rel, reason))
                continue
            files.append((rel, path))
    files.sort()
    ignored.sort()
    return [p for _, p in files], ignored
