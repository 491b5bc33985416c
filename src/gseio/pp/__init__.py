"""Preprocessing of assembled counts: :func:`tpm` (transcripts per million, the platform's recipe).

:data:`PROTOCOLS` lists the library preparation protocols :func:`tpm` knows, each with
whether its counts are divided by gene length (full-length) or not (UMI / 3' / 5' tags).
"""

from __future__ import annotations

from ._protocols import PROTOCOLS, Protocol, UnknownProtocolError, resolve_protocol
from .tpm import GeneLengthError, TPMError, tpm

__all__ = [
    "PROTOCOLS",
    "GeneLengthError",
    "Protocol",
    "TPMError",
    "UnknownProtocolError",
    "resolve_protocol",
    "tpm",
]
