"""The reader registry: which formats exist, how each is recognised and read.

Each input format lives in one module under :mod:`gseio.readers` and registers a
:class:`FormatSpec`: a cheap sniffer that scores the first decompressed bytes of a
file, optionally a grouping function that claims multi-file units (10x triplets) from
a folder listing, and a function that parses a unit into :class:`~gseio._piece.Piece`
objects. Detection asks every sniffer; the surest wins and ties are reported, never
settled silently.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from . import _open, _warn
from ._source import Source
from .errors import AmbiguousFormatError, EmptyFileError, UnknownFormatError

if TYPE_CHECKING:
    from ._piece import Piece
    from ._unit import ReadOptions, Unit

logger = logging.getLogger(__name__)

#: How many decompressed bytes sniffers get to look at, at least (the whole file when it is shorter).
SNIFF_BYTES = 16384
#: Complete lines (comment lines not counted) the head is read on to hold, beyond :data:`SNIFF_BYTES`: a
#: header and a few rows of a wide table, whose header line alone is longer than 16 KiB above ~1,100 columns.
SNIFF_LINES = 6
#: The most decompressed bytes read for sniffing, however long the lines are.
SNIFF_LIMIT = 16 << 20
#: The signature HDF5 files start with (every HDF5 format is checked for data outside the file first).
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


Kind = Literal["single_cell", "bulk", "qc"]


@dataclass(frozen=True, slots=True)
class FormatSpec:
    """How one input format is recognised and read.

    Attributes
    ----------
    name
        The format's name, as accepted by ``format=``.
    description
        One line for users (shown by ``gseio formats`` and in errors).
    read_unit
        ``read_unit(unit, options) -> list[Piece]``: parse one :class:`~gseio._unit.Unit`.
    sniff
        ``sniff(head, source) -> float`` for single-file units: how surely the decompressed
        ``head`` of ``source`` (see :func:`read_head`: at least :data:`SNIFF_BYTES` and
        :data:`SNIFF_LINES` lines of a text file, cut at a line end) is this format. ``0``: no;
        ``0.5``: a generic layout matches (e.g. any two-column table); ``1``: a signature
        unique to the format (a magic line, a tool's header). Must be cheap and must not
        raise (a sniffer that raises is reported as a warning and counts as ``0``).
    group
        ``group(sources) -> (units, rest)`` for multi-file units: claim the files that
        form units (e.g. 10x triplets by prefix) from a folder listing, return the rest.
    kind
        ``"single_cell"`` (one or more cells per unit), ``"bulk"`` (per-sample
        quantifier output, which may also be one cell per file), or ``"qc"``: recognised,
        but not expression data (listed as ignored with the description as reason).
    """

    name: str
    description: str
    read_unit: Callable[[Unit, ReadOptions], list[Piece]]
    sniff: Callable[[bytes, Source], float] | None = None
    group: Callable[[list[Source]], tuple[list[Unit], list[Source]]] | None = None
    kind: Kind = "single_cell"


_FORMATS: dict[str, FormatSpec] = {}


def register_format(spec: FormatSpec) -> FormatSpec:
    """Add a format to the registry (readers call this at import)."""
    if spec.name in _FORMATS and _FORMATS[spec.name] is not spec:
        raise ValueError(f"format {spec.name!r} is registered already")
    _FORMATS[spec.name] = spec
    return spec


def _load_readers() -> None:
    importlib.import_module("gseio.readers")


def list_formats() -> list[str]:
    """Return the names of all known input formats."""
    _load_readers()
    return sorted(_FORMATS)


def all_formats() -> list[FormatSpec]:
    """Every registered :class:`FormatSpec`, sorted by name."""
    _load_readers()
    return [_FORMATS[name] for name in sorted(_FORMATS)]


def get_format(name: str) -> FormatSpec:
    """Return the :class:`FormatSpec` called ``name``.

    Raises
    ------
    UnknownFormatError
        No format has that name; the message lists the known ones.
    """
    _load_readers()
    try:
        return _FORMATS[name]
    except KeyError:
        raise UnknownFormatError(
            f"unknown format {name!r}; known formats: {', '.join(sorted(_FORMATS))}"
        ) from None


def sniff_scores(source: Source, head: bytes) -> dict[str, float]:
    """Every sniffer's score for ``source`` (formats scoring 0 left out)."""
    scores = {}
    for spec in all_formats():
        if spec.sniff is not None and (score := _safe_sniff(spec, head, source)) > 0:
            scores[spec.name] = score
    return scores


def detect_format(path: str | os.PathLike[str] | Source, *, head: bytes | None = None) -> str:
    """Tell the format of a file from its content.

    Parameters
    ----------
    path
        The file (compressed or not), or a tar member.
    head
        Its first decompressed bytes, when the caller has them already (whole lines, as
        :func:`read_head` gives them).

    Returns
    -------
    The format's name (see :func:`list_formats`): the sniffer most sure of it wins.

    Raises
    ------
    UnknownFormatError
        No reader recognises the file; the message lists the known formats, or says that its
        lines are too long to be seen whole within :data:`SNIFF_LIMIT`.
    AmbiguousFormatError
        Several readers recognise it equally surely; pass ``format=`` to choose.
    ~gseio.errors.CorruptFileError
        The file cannot be read or decompressed, or it is an HTML page (a failed download).
    """
    source = _open.as_source(path)
    cut = False
    if head is None:
        head, cut = read_head(source)
    if not head:
        raise EmptyFileError("the file is empty", path=source)
    if _open.looks_like_html(head):  # a failed download: say so, not "unknown format"
        raise _open.html_error(source, compressed=_open.detect_compression(source) != "none")
    if head.startswith(HDF5_MAGIC):
        _refuse_unsafe_hdf5(source)
    scores = sniff_scores(source, head)
    if not scores and cut:
        raise _long_lines(source, head)
    if not scores:
        known = ", ".join(s.name for s in all_formats() if s.kind != "qc")
        raise UnknownFormatError(
            f"no reader recognises this file's content (known formats: {known}; 'gseio formats' describes "
            "them). Select the count files with pattern=, force one with format=, or skip unreadable files "
            "with on_error='skip'",
            path=source,
        )
    best = max(scores.values())
    winners = sorted(name for name, score in scores.items() if score == best)
    if len(winners) > 1:
        raise AmbiguousFormatError(
            f"the content matches several formats equally well ({', '.join(winners)}); choose one with format=",
            path=source,
        )
    return winners[0]


def read_head(source: Source) -> tuple[bytes, bool]:
    """The first decompressed bytes of ``source`` for sniffing, and whether :data:`SNIFF_LIMIT` cut them.

    A text file's head is read on past :data:`SNIFF_BYTES` until it holds :data:`SNIFF_LINES`
    complete lines besides comment lines (or the file ends, or the limit is reached), then cut
    at a line end, so sniffers see whole lines only. A binary file's head (a NUL byte in it) is its
    first :data:`SNIFF_BYTES`.

    Raises
    ------
    ~gseio.errors.UnknownFormatError
        No line ends within :data:`SNIFF_LIMIT` bytes (the message says so).
    ~gseio.errors.CorruptFileError, ~gseio.errors.FormatError
        As :func:`gseio._open.open_decompressed`.
    """
    with _open.open_decompressed(source) as fh:
        head = fh.read(SNIFF_BYTES)
        if len(head) < SNIFF_BYTES or b"\0" in head:
            return head, False
        while (end := _line_end(head, SNIFF_LINES)) < 0 and len(head) < SNIFF_LIMIT:
            more = fh.read(min(len(head), SNIFF_LIMIT - len(head)))  # doubling: few reads, whatever the length
            if not more:
                return head, False  # the whole file
            head += more
    if end >= 0:  # 16 KiB of whole lines, or more, up to the end of the last line needed: no further
        return head[: max(end, head.rfind(b"\n", 0, SNIFF_BYTES) + 1)], False
    if (last := head.rfind(b"\n")) < 0:
        raise _long_lines(source, head)
    return head[: last + 1], True


#: Lines that start so are comments or a preamble (``#``, Drop-seq's ``@``, Matrix Market's ``%``, GEO's ``!``).
_COMMENTS = (b"#", b"@", b"%", b"!")


def _line_end(head: bytes, n: int) -> int:
    """Where the ``n``-th complete line that is no comment ends (the offset after its newline), else -1."""
    pos = found = 0
    while found < n:
        end = head.find(b"\n", pos)
        if end < 0:
            return -1
        found += not head.startswith(_COMMENTS, pos)
        pos = end + 1
    return pos


def _long_lines(source: Source, head: bytes) -> UnknownFormatError:
    line = head.count(b"\n") + 1
    return UnknownFormatError(
        f"line {line} does not end within the first {SNIFF_LIMIT >> 20} MiB: not a count table, or a table "
        f"with more than ~1,000,000 columns, too wide to recognise from its start. If it is a count table, "
        "choose its reader with format= (e.g. format='wide_table')",
        path=source,
    )


def _refuse_unsafe_hdf5(source: Source) -> None:
    """Raise :class:`~gseio.errors.UnsafeInputError` for an HDF5 file reaching outside itself.

    The HDF5 sniffers see such a file as no match (they never raise), which would call it
    an unknown format; a damaged file is left to them.
    """
    from .readers._hdf5 import H5PY_ERRORS

    try:
        _open.open_hdf5(source).close()
    except H5PY_ERRORS:
        return


def _safe_sniff(spec: FormatSpec, head: bytes, source: Source) -> float:
    try:
        score = spec.sniff(head, source)  # type: ignore[misc]
    except Exception as e:  # a sniffer bug must not break detection of other formats
        _warn.warn(f"{source}: the {spec.name} sniffer failed ({e!r}); treated as no match", stacklevel=3)
        return 0.0
    return float(score)
