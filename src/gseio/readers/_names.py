r"""Cell and gene names the curation platform can read back, checked where the readers make them.

The platform reads the template's ``cellID_rawCounts.tsv`` and ``genes_rawCounts.tsv`` with
``pandas.read_csv(path, sep="\t")``, pandas' defaults and all. A name comes back from that read as
itself only when it

- is not empty or blank (pandas skips a blank line: every later name would shift by one);
- holds no tab, line break, carriage return, double quote (pandas' quote character) or NUL (pandas
  ends the field there);
- is none of pandas' missing-value markers (``NA``, ``null``, ``NaN``, ``None``, ``N/A``, ``#N/A``,
  ``<NA>``... exactly pandas' own list, taken from pandas at run time): they come back as NaN;
- is no number or boolean that pandas would print otherwise: ``01`` comes back as ``1``, ``1.0``
  and ``1e5`` as floats (and turn every whole number of the column into a float), ``inf`` as
  infinity, ``TRUE`` as ``True``. Whole numbers written the canonical way (``0``, ``7``, ``-12``:
  Entrez gene ids, numbered cells) and ``True``/``False`` come back as values whose ``str()`` is the
  name: they are kept. The rule for a reader of the template: compare ``str(value)`` with the name;
- is valid Unicode (no lone surrogate, which a file name with a byte that is not UTF-8 leaves).

Readers call :func:`clean` where they make the names, with the file and the line (or the entry of an
HDF5 dataset), so the error says where the bad name sits. Leading and trailing whitespace is stripped
(``"GENE3 "`` and ``"GENE3"`` are one gene), with a warning and a note for the provenance; blanks inside
a name are part of it (``"Gene 3"``). The engine runs :func:`check` (which strips nothing) on every
piece as a backstop.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

import numpy as np

from .. import _warn
from ..errors import FormatError

if TYPE_CHECKING:
    from .._piece import Piece
    from .._unit import Unit

__all__ = ["Names", "check", "check_pieces", "clean", "na_values", "problem"]

_BLANK = "is empty or blank"
#: Characters no name may hold: each breaks the platform's one-column TSV files.
_FORBIDDEN = {
    "\t": "a tab",
    "\n": "a line break",
    "\r": "a carriage return",
    '"': "a double quote",
    "\0": "a NUL byte",
}
#: What pandas' C parser reads as a number or a boolean (``[0-9]``: it knows no other digits) ...
_NUMERIC = r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[+-]?[0-9]+)?|[+-]?inf(?:inity)?|true|false"
#: The first characters of what it reads as a number or a boolean.
_NUMBER_START = frozenset("+-.0123456789iItTfF")
#: ... and those it reads back as themselves (once printed): whole numbers, and booleans spelt as Python does.
_CANONICAL = r"0|-?[1-9][0-9]*|(?-i:True|False)"
_MISREAD = re.compile(rf"^(?!(?:{_CANONICAL})$)(?:{_NUMERIC})$", re.IGNORECASE | re.MULTILINE)
#: pandas' documented default ``na_values`` (pandas >= 2.0), should its private list move.
_DOCUMENTED_NA = (
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>",
    "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
)  # fmt: skip


@cache
def na_values() -> frozenset[str]:
    """The strings ``pandas.read_csv`` reads as missing by default (exactly, case as pandas has it)."""
    try:
        from pandas._libs.parsers import STR_NA_VALUES
    except ImportError:  # pragma: no cover - a pandas that moved its private list
        return frozenset(_DOCUMENTED_NA)
    return frozenset(STR_NA_VALUES)


def _as_read(name: str) -> str:
    """How pandas reads ``name`` (a number or boolean that does not print back as itself), and when."""
    lower = name.lower()
    if lower in ("true", "false"):
        return f"the boolean {lower == 'true'} where the names around it are booleans too"
    value = int(name) if re.fullmatch(r"[+-]?[0-9]+", name) else float(name)
    return f"the number {value!r} where the names around it are numbers too"


def problem(name: str, *, padded: bool = True) -> str | None:
    """Why the platform cannot read ``name`` back as itself, else ``None``.

    With ``padded``, leading or trailing whitespace is a problem too (names not stripped yet).
    """
    if not name.strip():
        return _BLANK
    for char, label in _FORBIDDEN.items():
        if char in name:
            return f"holds {label}, which the platform's one-column TSV files cannot hold"
    if name in na_values():
        return (
            "would be read back as a missing value (NaN) by the platform (pandas.read_csv reads "
            f"{name!r} as NaN); rename it, or drop its row"
        )
    if _MISREAD.fullmatch(name):
        return (
            f"would be read back by the platform (pandas.read_csv) as {_as_read(name)} (pandas types each "
            "block of rows by its values); rename it (a prefix makes it text)"
        )
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid text (a byte that is not UTF-8, e.g. in a file name); rename it"
    if padded and name != name.strip():
        return "has leading or trailing whitespace"
    return None


def _first_problem(values: list[str], *, padded: bool) -> int | None:
    """The position of the first name with a :func:`problem`, else ``None``.

    Whether there is one is decided by scans at C speed (a series' 60,000 gene names take a few
    milliseconds); only then is each name looked at, to find the first.
    """
    if not values:
        return None
    joined = "\n".join(values)
    try:
        joined.encode("utf-8")
        valid = True
    except UnicodeEncodeError:
        valid = False
    clean = (
        valid
        and "" not in values
        and joined.count("\n") == len(values) - 1  # (a name holding a line break adds one)
        and not any(char in joined for char in _FORBIDDEN if char != "\n")
        and na_values().isdisjoint(values)
        and not (padded and any(v != v.strip() for v in values))
    )
    if clean:  # numbers last: only names that start like one, and are no plain whole number, are matched
        numeric = [v for v in values if v[0] in _NUMBER_START and not (v.isdigit() and (v[0] != "0" or v == "0"))]
        clean = not (numeric and _MISREAD.search("\n".join(numeric)))  # one name a line: ^ and $ are its ends
    if clean:
        return None
    return next((i for i, v in enumerate(values) if problem(v, padded=padded) is not None), None)


def _raise(values: list[str], i: int, *, what: str, path: object, where: Callable[[int], str]) -> None:
    reason = problem(values[i])
    if reason is None:  # pragma: no cover - _first_problem and problem disagree
        return
    if reason == _BLANK:
        raise FormatError(f"{where(i)}: the {what} {reason}; give it one, or drop it", path=path)
    raise FormatError(f"{where(i)}: the {what} {values[i]!r} {reason}", path=path)


def check(names: Sequence[str] | np.ndarray, *, what: str, path: object, where: Callable[[int], str]) -> None:
    """Raise :class:`~gseio.errors.FormatError` at the first name the platform cannot read back.

    Nothing is stripped: leading or trailing whitespace is an error too (the backstop after the readers).

    Parameters
    ----------
    names
        The names, as strings.
    what
        What they are, for the message (``"gene name"``, ``"cell id"``, ``"barcode"``).
    path
        The file they come from.
    where
        ``where(k)`` says where name ``k`` sits (``"line 12"``, ``"header column 3"``, ``"entry 5"``).
    """
    values = [str(v) for v in names]
    if (i := _first_problem(values, padded=True)) is not None:
        _raise(values, i, what=what, path=path, where=where)


@dataclass(frozen=True, slots=True)
class Names:
    """Names as :func:`clean` leaves them, and what it did."""

    names: np.ndarray  # object array of str
    note: str | None  # for Piece.notes: how many names were stripped (None: none)

    def into(self, notes: dict[str, str], key: str) -> None:
        """Record the note under ``key`` of a piece's ``notes``, when there is one."""
        if self.note is not None:
            notes[key] = self.note


def clean(names: Sequence[str] | np.ndarray, *, what: str, path: object, where: Callable[[int], str]) -> Names:
    """Strip leading and trailing whitespace from names, then refuse those the platform cannot read back.

    A stripped name is said so: a :class:`~gseio.errors.GseioWarning` naming ``path``, how many
    names were stripped and the first of them, and the same as :attr:`Names.note`.

    Parameters
    ----------
    names
        The names as the file gives them.
    what
        What they are, for the messages (``"gene name"``, ``"cell id"``, ``"barcode"``).
    path
        The file they come from (named in the error and the warning).
    where
        ``where(k)`` says where name ``k`` sits (``"line 12"``, ``"header column 3"``, ``"entry 5"``).

    Raises
    ------
    ~gseio.errors.FormatError
        A name is empty or blank, holds a tab, line break, carriage return, double quote or NUL, is
        one of pandas' missing-value markers, would be read back as another number or a boolean, or
        is not valid text. The message names the file, the place and what to do.
    """
    raw = [str(v) for v in (names.tolist() if isinstance(names, np.ndarray) else names)]
    values = [v.strip() for v in raw]
    if (i := _first_problem(values, padded=False)) is not None:
        _raise(values, i, what=what, path=path, where=where)
    changed = (
        [] if raw == values else [i for i, (a, b) in enumerate(zip(raw, values, strict=True)) if len(a) != len(b)]
    )
    note = None
    if changed:
        first = changed[0]
        count = f"{len(changed)} {what}{'s' * (len(changed) > 1)}"
        note = f"{count} stripped of leading or trailing whitespace (first: {where(first)}, {raw[first]!r})"
        _warn.warn(f"{path}: {note}; names equal once stripped are one {what}", stacklevel=3)
    return Names(np.array(values, dtype=object), note)


def check_pieces(pieces: Sequence[Piece], unit: Unit, seen: set[str]) -> None:
    """The engine's backstop: every name of a unit's pieces, as a reader made it, is one the platform reads back.

    The readers clean names where they read them (and name the line); this catches what a reader
    missed, naming the file and the cell or gene by position. ``seen`` holds the keys of the gene
    lists checked already (a series shares one): each is checked once per build. The unit's sample
    prefixes cell ids that repeat across samples, so it may hold none of the forbidden characters.

    Raises
    ------
    ~gseio.errors.FormatError
        A cell id, gene name or the sample that the platform could not read back.
    """
    for piece in pieces:
        check(piece.cells, what="cell id", path=piece.source, where=lambda k: f"cell {k + 1}")
        if piece.genes.key not in seen:
            check(piece.genes.names, what="gene name", path=piece.source, where=lambda k: f"gene {k + 1}")
            seen.add(piece.genes.key)  # set.add is atomic: safe from the reader threads
    sample = unit.sample
    label = next((label for char, label in _FORBIDDEN.items() if char in sample), None)
    try:
        sample.encode("utf-8")
    except UnicodeEncodeError:
        label = "a byte that is not UTF-8"
    if label is not None:
        raise FormatError(
            f"the sample {sample!r} (from the file or folder names) holds {label}; it prefixes the cell ids that "
            "repeat across samples, and the platform's TSV files cannot hold it: rename the file or folder",
            path=unit.main,
        )
