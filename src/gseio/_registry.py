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

#: How many decompressed bytes sniffers get to look at.
SNIFF_BYTES = 16384
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
        ``head`` (the first :data:`SNIFF_BYTES`) of ``source`` is this format. ``0``: no;
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
        Its first decompressed bytes, when the caller has them already.

    Returns
    -------
    The format's name (see :func:`list_formats`): the sniffer most sure of it wins.

    Raises
    ------
    UnknownFormatError
        No reader recognises the file; the message lists the known formats.
    AmbiguousFormatError
        Several readers recognise it equally surely; pass ``format=`` to choose.
    ~gseio.errors.CorruptFileError
        The file cannot be read or decompressed, or it is an HTML page (a failed download).
    """
    source = _open.as_source(path)
    if head is None:
        head = _open.read_bytes(source, limit=SNIFF_BYTES)
    if not head:
        raise EmptyFileError("the file is empty", path=source)
    if _open.looks_like_html(head):  # a failed download: say so, not "unknown format"
        raise _open.html_error(source, compressed=_open.detect_compression(source) != "none")
    if head.startswith(HDF5_MAGIC):
        _refuse_unsafe_hdf5(source)
    scores = sniff_scores(source, head)
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
