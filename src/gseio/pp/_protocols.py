"""Library preparation protocols, and whether TPM divides their counts by gene length.

Full-length protocols sequence fragments from along the whole transcript, so a longer
gene yields more reads per molecule and its counts are divided by its length. UMI and
3'/5'-tag protocols count one tag per molecule whatever the gene's length, so they are
not. Names are matched loosely (see :func:`normalise_name`); the platform's own
spellings (``Smart-seq2``, ``C1 Fluidigm``, ``10x chromium``, ``msSCRB-seq`` ...) are
aliases of the canonical names listed here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import MappingProxyType

from ..errors import GseioError

__all__ = ["PROTOCOLS", "Protocol", "UnknownProtocolError", "normalise_name", "resolve_protocol"]


class UnknownProtocolError(GseioError, ValueError):
    """A library preparation protocol that gseio does not know (the message lists the known ones)."""


@dataclass(frozen=True)
class Protocol:
    """A library preparation protocol.

    Parameters
    ----------
    name
        The canonical name.
    full_length
        Whether reads cover whole transcripts (TPM divides counts by gene length).
    aliases
        Other spellings, matched through :func:`normalise_name`.
    """

    name: str
    full_length: bool
    aliases: tuple[str, ...] = ()


_FULL_LENGTH = (
    Protocol("Smart-seq", True, ("SMARTer", "SMART-seq v4", "SMART-Seq HT", "SMARTer Ultra Low")),
    Protocol("Smart-seq2", True),
    Protocol("Smart-seq3", True),  # UMI reads are a few percent; the internal reads span the transcript
    Protocol("Smart-seq3xpress", True),
    Protocol("FLASH-seq", True),
    Protocol("Fluidigm C1", True, ("C1 Fluidigm", "C1", "Fluidigm", "C1 Smart-seq")),
    Protocol("Quartz-seq", True),
    Protocol("MATQ-seq", True),
    Protocol("SUPeR-seq", True),
    Protocol("RamDA-seq", True),
    Protocol("full-length", True, ("full length", "fulllength")),
)
_TAG = (
    Protocol(
        "10x Chromium",
        False,
        ("10x", "10x Genomics", "Chromium", "10x 3'", "10x 5'", "10x 3 prime", "10x 5 prime", "10x Visium"),
    ),
    Protocol("Drop-seq", False, ("Dropseq",)),
    Protocol("inDrops", False, ("inDrop",)),
    Protocol("CEL-seq", False),
    Protocol("CEL-seq2", False),
    Protocol("MARS-seq", False, ("MARS-seq2", "MARS-seq 2.0")),
    Protocol("SCRB-seq", False),
    Protocol("mcSCRB-seq", False, ("msSCRB-seq",)),  # "msSCRB-seq" is the platform's spelling
    Protocol("Microwell-seq", False),
    Protocol("Seq-Well", False, ("Seq-Well S3", "Seq-Well S^3")),
    Protocol("SPLiT-seq", False, ("Parse Biosciences", "Parse Evercode")),
    Protocol("sci-RNA-seq", False, ("sci-RNA-seq3",)),
    Protocol("STRT-seq", False, ("STRT", "C1 STRT")),
    Protocol("Quartz-seq2", False),  # unlike Quartz-seq, a 3' UMI protocol
    Protocol("BD Rhapsody", False, ("Rhapsody",)),
    Protocol("VASA-seq", False),  # total RNA, but counted by UMI
    Protocol("UMI", False, ("UMI-based", "3'", "5'", "3' end", "5' end", "3' tag", "5' tag")),
)

#: Known protocols by canonical name (read-only).
PROTOCOLS: MappingProxyType[str, Protocol] = MappingProxyType({p.name: p for p in (*_FULL_LENGTH, *_TAG)})

# Words that say nothing about the chemistry: a vendor, a product line, a version.
_NOISE = re.compile(r"\b(?:genomics|chromium|single[\s_-]*cell|next\s*gem|kit|chemistry|protocol)\b")
_VERSION = re.compile(r"\b(?:v|ver|version)\s*\.?\s*\d+(?:\.\d+)*\b")
_PRIME = re.compile(r"(\d)\s*(?:'|prime)(?:\s*-?\s*(?:end|tag))?")


def normalise_name(name: str) -> str:
    """The key a protocol name is matched by.

    Lower case; typographic primes as ``'``; version words (``v3``, ``version 2``) and
    vendor words (``Genomics``, ``Chromium``, ``single cell``, ``kit``) dropped; ``3'``,
    ``3 prime`` and ``3' end`` all become ``3p``; then only letters and digits remain.
    A name made only of vendor words (``"Chromium"``) keeps them.
    """
    text = name.lower().replace("\u2019", "'").replace("\u2032", "'").replace("\u2018", "'")
    text = _VERSION.sub(" ", text)
    text = _PRIME.sub(r"\1p ", text)
    stripped = _NOISE.sub(" ", text)
    if re.sub(r"[^a-z0-9]", "", stripped):
        text = stripped
    return re.sub(r"[^a-z0-9]", "", text)


_BY_KEY: dict[str, Protocol] = {}
for _protocol in PROTOCOLS.values():
    for _spelling in (_protocol.name, *_protocol.aliases):
        _key = normalise_name(_spelling)
        if _BY_KEY.setdefault(_key, _protocol) is not _protocol:  # pragma: no cover - a table error
            raise RuntimeError(f"protocol spelling {_spelling!r} is claimed twice")


def resolve_protocol(name: str | Protocol) -> Protocol:
    """The protocol ``name`` stands for.

    Parameters
    ----------
    name
        A protocol name, matched case-insensitively ignoring spaces, hyphens,
        underscores, vendor and version words (``"smart-seq2"``, ``"SMARTseq2"``,
        ``"10X chromium"``, ``"10x Chromium 3' v3"``), or a :class:`Protocol`.

    Returns
    -------
    The matching entry of :data:`PROTOCOLS`.

    Raises
    ------
    UnknownProtocolError
        No known protocol has that name; the message lists the known ones.
    """
    if isinstance(name, Protocol):
        return name
    protocol = _BY_KEY.get(normalise_name(name)) if isinstance(name, str) else None
    if protocol is None:
        full = ", ".join(p.name for p in _FULL_LENGTH)
        tag = ", ".join(p.name for p in _TAG)
        raise UnknownProtocolError(
            f"unknown library preparation protocol {name!r}. Full-length protocols (counts divided by "
            f"gene length): {full}. UMI / 3' / 5' tag protocols (no length division): {tag}. "
            "Pass protocol='full-length' or protocol='UMI' for one not listed."
        )
    return protocol
