"""Typed errors and warnings raised by gseio.

Every error gseio raises on purpose is a :class:`GseioError`. Errors about an input
file carry the file's path in :attr:`GseioError.path` and name it in their message,
together with what went wrong and, where there is one, what to do about it.
"""

from __future__ import annotations

import os

from ._source import printable

__all__ = [
    "AmbiguousFormatError",
    "CorruptFileError",
    "DecompressionBombError",
    "DuplicateInputError",
    "EmptyFileError",
    "FormatError",
    "GseioError",
    "GseioWarning",
    "InputChangedError",
    "InputError",
    "InvalidValueError",
    "MixedInputError",
    "OutputError",
    "TemplateError",
    "UnknownFormatError",
    "UnsafeInputError",
]


class GseioError(Exception):
    """Base class of every error gseio raises on purpose.

    Parameters
    ----------
    message
        What went wrong and what to do about it.
    path
        The file or folder concerned, if any (a path, or a tar member); it is
        prefixed to the message.
    """

    def __init__(self, message: str, *, path: object = None) -> None:
        # a path, or a tar member (shown as ``archive.tar:member``); bytes of a name that are not UTF-8
        # are spelled \xNN, so that the message can be printed and stored
        shown = None if path is None else os.fsdecode(path) if isinstance(path, os.PathLike | str) else str(path)
        self.path = None if shown is None else printable(shown)
        self.reason = message
        super().__init__(f"{self.path}: {message}" if self.path is not None else message)


class InputError(GseioError):
    """An input file cannot be read as expression data."""


class EmptyFileError(InputError):
    """The input file (after decompression) holds no data."""


class CorruptFileError(InputError):
    """The input file cannot be read: truncated or corrupt compression, unreadable bytes."""


class DecompressionBombError(CorruptFileError):
    """A compressed input expands far beyond what real count tables do.

    Raised while the file is decompressed, as soon as it passes the limit (so the
    expanded bytes never pile up in memory): more than ``max_expansion`` times its
    compressed size, and more than a floor below which nothing is refused. Either a
    decompression bomb, or data that compresses unusually well: then raise the limit
    with ``max_expansion=`` (``--max-expansion``), or pass ``None`` to lift it.
    """


class FormatError(InputError):
    """The input file's content does not have the layout its format requires."""


class UnknownFormatError(FormatError):
    """No known reader recognises the input file."""


class AmbiguousFormatError(FormatError):
    """More than one reader recognises the input file equally well."""


class InvalidValueError(InputError, ValueError):
    """A count is missing, non-numeric, negative, NaN or infinite."""


class MixedInputError(InputError):
    """The input mixes kinds of data that are not joined silently (single-cell with bulk, counts with TPM)."""


class TemplateError(InputError):
    """A template folder is incomplete or its files disagree with each other."""


class DuplicateInputError(InputError):
    """Two inputs hold the same bytes under different names (the same file twice)."""


class UnsafeInputError(InputError):
    """An input would make gseio read data from outside the input, and is refused before anything is read.

    HDF5 files whose datasets keep their data in other files (external storage, virtual
    datasets) or that link to other files (external links): their data are not in the
    file, and reading them would read whatever file they name. Ask for a self-contained
    file (``h5repack`` copies external data in).
    """


class InputChangedError(InputError):
    """An input file is no longer the file listed when the build started (replaced, or swapped for a link).

    Nothing of it is read: the build never follows a file swapped for a symbolic link
    after listing. Run the build again once the input folder is stable.
    """


class OutputError(GseioError):
    """An output cannot be written (it exists already, or the folder is unusable)."""


class GseioWarning(UserWarning):
    """Warnings issued by gseio (e.g. cell names that had to be made unique)."""
