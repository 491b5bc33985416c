"""Limits on what input may do: decompression bombs and HTML pages posing as data.

:func:`expansion_limit` sets, for a block of code, how far a compressed file may expand
before :mod:`gseio._open` refuses it as a :class:`~gseio.errors.DecompressionBombError`.
The limit is a context variable, so readers see it without a parameter (their threads
run in a copy of the caller's context, see :func:`gseio._parallel.ordered_map`).
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import re
from collections.abc import Iterator

from ._source import Source
from .errors import CorruptFileError, DecompressionBombError

#: Suffixes that name a compression, stripped when a name is derived from a file.
COMPRESSION_SUFFIXES = (".gz", ".gzip", ".bz2", ".xz", ".zip")

_NAMES = {"gzip": "gzip", "bz2": "bzip2", "xz": "xz", "zip": "zip", "none": "uncompressed"}

#: Default of ``max_expansion``. Dense count tables full of zeros are the most compressible real data:
#: a gzipped 20,000 x 2,000 table reaches ~160x at 0.5% non-zeros, ~400x at 0.1% and ~500x when all
#: zeros (bzip2/xz: ~270x, 700-900x, 1,600-2,700x); Matrix Market and per-cell files ~3-50x. Deflate
#: cannot pass ~1030x, which a gzip bomb of constant bytes reaches; bzip2 and xz bombs 7,000-1,000,000x.
DEFAULT_MAX_EXPANSION = 1000.0
#: Expanded sizes up to this are never refused, whatever the ratio (small files compress well too).
EXPANSION_FLOOR = 64 << 20

_MAX_EXPANSION: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "gseio_max_expansion", default=DEFAULT_MAX_EXPANSION
)

#: How many leading bytes are looked at for magic numbers and HTML.
_HEAD_BYTES = 1024
_HTML = re.compile(
    rb"(?:\xef\xbb\xbf)?\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*(?:<!doctype\s+html|<html[\s>])",
    re.IGNORECASE | re.DOTALL,
)


def check_ratio(value: object) -> float | None:
    """A valid ``max_expansion``: a positive number or ``None`` (text too: the CLI's ``"500"``, ``"none"``)."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("none", "off", "inf", "infinity"):
            return None
        with contextlib.suppress(ValueError):
            value = float(text)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value) or value <= 0:
        raise ValueError(f"max_expansion must be a positive number, or None to lift the limit; not {value!r}")
    return None if math.isinf(value) else float(value)


@contextlib.contextmanager
def expansion_limit(ratio: float | None) -> Iterator[None]:
    """Within the block, refuse compressed files that expand beyond ``ratio`` times their size.

    Parameters
    ----------
    ratio
        The largest expanded size allowed, in multiples of the compressed size; sizes up to
        :data:`EXPANSION_FLOOR` are always allowed. ``None`` lifts the limit.

    Raises
    ------
    ValueError
        ``ratio`` is not a positive number or ``None``.
    """
    token = _MAX_EXPANSION.set(check_ratio(ratio))
    try:
        yield
    finally:
        _MAX_EXPANSION.reset(token)


def max_expanded_size(compressed_size: int) -> int | None:
    """The largest decompressed size allowed for a file of ``compressed_size`` bytes (``None``: no limit)."""
    ratio = _MAX_EXPANSION.get()
    return None if ratio is None else max(int(ratio * compressed_size), EXPANSION_FLOOR)


def bomb_error(source: Source, kind: str, compressed: int, limit: int) -> DecompressionBombError:
    ratio = _MAX_EXPANSION.get()
    return DecompressionBombError(
        f"its {_NAMES[kind]} data expanded past {_human(limit)}, {limit / max(1, compressed):,.0f} times its "
        f"compressed size of {_human(compressed)}, and reading stopped there. The limit is {ratio:g} times the "
        f"compressed size (never below {_human(EXPANSION_FLOOR)}), far beyond real count tables: a "
        "decompression bomb, or data that compresses unusually well. If the file is genuine, raise the limit "
        "with max_expansion= (--max-expansion), or lift it with max_expansion=None (--max-expansion none)",
        path=source,
    )


def _human(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{n:,} bytes"


def looks_like_html(head: bytes) -> bool:
    """Whether ``head`` starts an HTML page (after whitespace, a BOM, an XML declaration, comments)."""
    return _HTML.match(head[:_HEAD_BYTES]) is not None


def html_error(source: Source, *, compressed: bool = False) -> CorruptFileError:
    """The error for an HTML page saved under a data file's name (``compressed``: served compressed)."""
    named = next((s for s in COMPRESSION_SUFFIXES if source.name.lower().endswith(s)), None)
    what = f" (named {named} but not compressed)" if named and not compressed else ""
    return CorruptFileError(
        f"is an HTML page, not data{what}: probably a failed download (an error or sign-in page saved under "
        "the file's name); download it again",
        path=source,
    )
