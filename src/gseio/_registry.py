"""The reader registry: which formats exist, how each is recognised and read.

Each input format lives in one module under :mod:`gseio.readers` and registers a
:class:`FormatSpec`: a cheap sniffer that looks at the first decompressed bytes of
a file and a function that parses the file into :class:`~gseio._piece.Piece` objects.
Detection asks every sniffer; ties are reported, never settled silently.
"""

from __future__ import annotations

import importlib
import logging
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _open
from .errors import AmbiguousFormatError, GseioWarning, UnknownFormatError

if TYPE_CHECKING:
    from ._piece import Piece

logger = logging.getLogger(__name__)

#: How many decompressed bytes sniffers get to look at.
SNIFF_BYTES = 16384


@dataclass(frozen=True, slots=True)
class FormatSpec:
    """How one input format is recognised and read.

    Attributes
    ----------
    name
        The format's name, as accepted by ``format=``.
    description
        One line for users (shown by ``gseio formats`` and in errors).
    sniff
        ``sniff(head, name) -> bool``: does the decompressed ``head`` of a file called
        ``name`` look like this format? Must be cheap; may raise (that is reported as
        a warning and counts as "no").
    read_pieces
        ``read_pieces(path, **options) -> list[Piece]``.
    """

    name: str
    description: str
    sniff: Callable[[bytes, str], bool]
    read_pieces: Callable[..., list[Piece]]


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


def detect_format(path: str | os.PathLike[str], *, head: bytes | None = None) -> str:
    """Tell the format of a file from its content.

    Parameters
    ----------
    path
        The file (compressed or not).
    head
        Its first decompressed bytes, when the caller has them already.

    Returns
    -------
    The format's name (see :func:`list_formats`).

    Raises
    ------
    UnknownFormatError
        No reader recognises the file; the message lists the known formats.
    AmbiguousFormatError
        Several readers recognise it; pass ``format=`` to choose.
    ~gseio.errors.CorruptFileError
        The file cannot be read or decompressed.
    """
    _load_readers()
    path = Path(path)
    if head is None:
        head = _open.read_bytes(path, limit=SNIFF_BYTES)
    if not head:
        from .errors import EmptyFileError

        raise EmptyFileError("the file is empty", path=path)
    matches = [name for name, spec in sorted(_FORMATS.items()) if _safe_sniff(spec, head, path)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise UnknownFormatError(
            "no reader recognises this file's content; known formats: "
            + "; ".join(f"{s.name} ({s.description})" for s in sorted(_FORMATS.values(), key=lambda s: s.name))
            + ". Select the count files with pattern=, or skip unreadable files with on_error='skip'",
            path=path,
        )
    raise AmbiguousFormatError(
        f"the content matches several formats ({', '.join(matches)}); choose one with format=",
        path=path,
    )


def _safe_sniff(spec: FormatSpec, head: bytes, path: Path) -> bool:
    try:
        return bool(spec.sniff(head, path.name))
    except Exception as e:  # a sniffer bug must not break detection of other formats
        warnings.warn(
            f"{path}: the {spec.name} sniffer failed ({e!r}); treated as no match", GseioWarning, stacklevel=3
        )
        return False


def read_pieces(path: str | os.PathLike[str], *, format: str | None = None, **options: Any) -> list[Piece]:
    """Detect (unless ``format`` is given) and parse one file into pieces."""
    spec = get_format(format) if format is not None else get_format(detect_format(path))
    return spec.read_pieces(Path(path), **options)
