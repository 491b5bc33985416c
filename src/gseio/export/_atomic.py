"""Crash-safe writes: write under a temporary name in the same folder, fsync, rename.

A reader of the folder sees either no file or the complete file under its final
name, never a half-written file that looks complete.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def temporary_name(final: Path) -> Path:
    """A hidden sibling of ``final`` that keeps its suffix (some writers look at it)."""
    return final.with_name(f".{final.stem}.tmp-{uuid.uuid4().hex[:12]}{final.suffix}")


@contextlib.contextmanager
def atomic_outputs(finals: Sequence[Path]) -> Iterator[list[Path]]:
    """Yield temporary paths for ``finals``; on success move them all into place.

    If the body raises, every temporary file is removed and no final file is touched.
    """
    temps = [temporary_name(Path(f)) for f in finals]
    try:
        yield temps
        for tmp in temps:
            if not tmp.exists():
                raise FileNotFoundError(f"the writer did not create {tmp}")
            _fsync_path(tmp)
    except BaseException:
        for tmp in temps:
            tmp.unlink(missing_ok=True)
        raise
    for tmp, final in zip(temps, finals, strict=True):
        os.replace(tmp, final)
    for folder in {Path(f).parent for f in finals}:
        _fsync_path(folder)
