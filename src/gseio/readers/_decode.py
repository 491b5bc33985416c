"""Names as text: UTF-8, with a per-name fallback to Windows-1252 that says which lines needed it.

Gene and cell names are the join key, so one file must not change how another's names read.
Files are UTF-8 (mostly plain ASCII), but a spreadsheet saved on Windows writes Windows-1252,
and a single such byte once made a reader decode the whole column as Latin-1: ``α-actin``
(UTF-8) became ``Î±-actin`` and no longer met the same gene of the other files. Here each
name is decoded on its own: a name that is valid UTF-8 is read as UTF-8; only a name that is
not is read as Windows-1252 (Latin-1 for the five bytes Windows-1252 leaves undefined), which
maps every byte to a character, so nothing is dropped and no two names merge. The readers
warn (:func:`report`) naming the file and the lines, since such a name may still be wrong.

The common case costs one vectorised check: an Arrow column is validated as UTF-8 in C, a
list of names is decoded in one pass; the per-name path runs only when that fails.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import _warn

__all__ = ["decode_name", "decode_names", "report"]

#: How many line numbers a warning lists before it counts the rest.
LISTED = 5


def _legacy(raw: bytes) -> str:
    try:
        return raw.decode("cp1252")
    except UnicodeDecodeError:  # 0x81 0x8d 0x8f 0x90 0x9d: undefined in cp1252, kept as Latin-1 maps them
        return raw.decode("latin-1")


def decode_name(raw: bytes) -> tuple[str, bool]:
    """One name as text, and whether it was not UTF-8 (then read as Windows-1252)."""
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return _legacy(raw), True


def decode_names(values: Any) -> tuple[np.ndarray, list[int]]:
    """Names as an object array of str, and the positions of those that were not UTF-8.

    Parameters
    ----------
    values
        An Arrow binary (or string) array or chunked array, or a sequence of ``bytes``;
        missing values (``None``) become ``""``.

    Returns
    -------
    The names, and the (0-based) positions read as Windows-1252 (empty in the common case).
    """
    if hasattr(values, "cast"):  # Arrow: validated in C, no Python loop when all is UTF-8
        import pyarrow as pa

        try:
            text = values.cast(pa.string())
        except pa.ArrowInvalid:
            values = values.to_pylist()
        else:
            names = text.to_numpy(zero_copy_only=False)
            if text.null_count:
                names[text.is_null().to_numpy(zero_copy_only=False)] = ""
            return names.astype(object, copy=False), []
    items = [b"" if v is None else v for v in values]
    try:
        return np.array([v.decode("utf-8") for v in items], dtype=object), []
    except UnicodeDecodeError:
        pass
    names = np.empty(len(items), dtype=object)
    recoded = []
    for k, raw in enumerate(items):
        names[k], legacy = decode_name(raw)
        if legacy:
            recoded.append(k)
    return names, recoded


def report(
    path: object,
    recoded: Sequence[int],
    names: Sequence[str],
    *,
    line: Callable[[int], int] | None = None,
    what: str = "names",
) -> None:
    """Warn that the names at positions ``recoded`` were not UTF-8 (nothing when there are none).

    ``line(k)`` is the file's line number of position ``k`` (default ``k + 1``); the warning
    lists the first :data:`LISTED` lines and counts the others.
    """
    if not recoded:
        return
    where = line or (lambda k: k + 1)
    lines = [str(where(k)) for k in recoded[:LISTED]]
    more = f" and {len(recoded) - LISTED:,} more" if len(recoded) > LISTED else ""
    many = len(recoded) > 1
    _warn.warn(
        f"{path}: {len(recoded):,} of {len(names):,} {what} {'are' if many else 'is'} not valid UTF-8 "
        f"(line{'s' if many else ''} {', '.join(lines)}{more}): read as Windows-1252/Latin-1 (e.g. "
        f"{names[recoded[0]]!r}), every other name as UTF-8; if {'they look' if many else 'it looks'} wrong, "
        "save the file as UTF-8",
        stacklevel=3,
    )
