"""Gene identity while assembling: what makes two files' gene labels the same gene.

- Ensembl-like IDs join without their version suffix (``ENSG00000141510.17`` and
  ``ENSG00000141510.16`` are one gene); the versioned ID seen first is kept in
  ``var["gene_id_version"]``. GENCODE's ``_PAR_Y`` copies stay distinct
  (``ENSG00000002586.20_PAR_Y`` joins as ``ENSG00000002586_PAR_Y``).
- A series whose files label genes by Ensembl ID in some files and by symbol in others
  cannot be joined by name: it is refused (:class:`GeneIdentityError`) with the counts
  of each kind, rather than silently doubling every gene.
- ERCC spike-ins are flagged in ``var["spike_in"]`` and kept in the raw counts.
- Symbols that spreadsheet software turned into dates (``1-Mar``, ``2-Sep``) are
  detected and reported. With a gene table, a date is repaired when exactly one of the
  symbols it can stand for is in the table (``2-Sep`` -> SEPTIN2); ``1-Mar`` stays as it
  is when the table has both MARCH1 and MARC1.
- With a gene table, symbol-labelled files are indexed by the Ensembl ID the table gives
  each (unique) symbol, so they join files labelled by ID; the symbol goes to
  ``var["gene_symbols"]``; symbols the table does not know stay as they are.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from ._options import GeneIds
from .errors import InputError

_ENSEMBL = re.compile(r"^(ENS[A-Z]*[GTPE]\d{11})(\.\d+)?(_PAR_Y)?$")
_SPIKE_IN = re.compile(r"^ERCC-\d{5}$")
_MONTHS = "jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec"
_EXCEL_DATE = re.compile(rf"^(\d{{1,2}}-({_MONTHS})|({_MONTHS})-\d{{1,2}})$", re.IGNORECASE)
#: Share of a gene list's labels that must be Ensembl-like (or not) to call its kind.
KIND_SHARE = 0.9


class GeneIdentityError(InputError):
    """Files label genes in ways that cannot be joined by name (Ensembl IDs in some, symbols in others)."""


def join_keys(names: np.ndarray, policy: GeneIds) -> np.ndarray:
    """The labels genes are joined by: Ensembl IDs without version (``policy="auto"``), or as given."""
    if policy == "exact":
        return names
    keys = np.array(names, dtype=object)
    for i, name in enumerate(names):
        if name.startswith("ENS") and (match := _ENSEMBL.match(name)) and match.group(2):
            keys[i] = match.group(1) + (match.group(3) or "")
    return keys


def label_kind(names: np.ndarray) -> str:
    """``"ids"`` when most labels are Ensembl IDs, ``"symbols"`` when few are, else ``"mixed"``."""
    if len(names) == 0:
        return "mixed"
    share = sum(1 for n in names if _ENSEMBL.match(n)) / len(names)
    if share >= KIND_SHARE:
        return "ids"
    return "symbols" if share <= 1 - KIND_SHARE else "mixed"


def check_kinds(kinds: dict[str, tuple[str, int, str]], *, where: object) -> None:
    """Refuse a series mixing gene lists labelled by Ensembl ID with lists labelled by symbol.

    ``kinds`` maps each gene list's key to ``(kind, n_genes, an example unit)``.
    """
    ids = [(n, unit) for kind, n, unit in kinds.values() if kind == "ids"]
    symbols = [(n, unit) for kind, n, unit in kinds.values() if kind == "symbols"]
    if ids and symbols:
        raise GeneIdentityError(
            f"{len(ids)} gene list(s) label genes by Ensembl ID (e.g. {ids[0][1]}, {ids[0][0]:,} genes) and "
            f"{len(symbols)} by symbol (e.g. {symbols[0][1]}, {symbols[0][0]:,} genes): joined by name, every "
            "gene would appear twice. Build the two kinds separately (pattern=), or use gene_ids='exact' to "
            "join them anyway",
            path=where,
        )


def symbol_to_id(table: Any) -> dict[str, str]:
    """Each symbol that names exactly one gene of a gene table (index: gene ID) -> that ID."""
    symbols = table["gene_symbol"].dropna().astype(str)
    unique = symbols[~symbols.duplicated(keep=False)]
    return dict(zip(unique.to_numpy(), unique.index.astype(str), strict=True))


#: What a spreadsheet's date can stand for: month -> symbol families (HGNC's old and new names).
_DATE_FAMILIES = {"mar": ("MARCH", "MARCHF", "MARC"), "sep": ("SEPT", "SEPTIN"), "sept": ("SEPT", "SEPTIN"),
                  "dec": ("DEC",), "apr": ("APR",), "oct": ("OCT",), "nov": ("NOV",)}  # fmt: skip


def repair_date(name: str, symbols: set[str]) -> str | None:
    """The symbol a date-like label stands for, when exactly one candidate is in ``symbols``."""
    if _EXCEL_DATE.match(name) is None:
        return None
    first, second = name.split("-")
    day, month = (first, second) if first.isdigit() else (second, first)
    families = _DATE_FAMILIES.get(month.lower(), (month.upper(),))
    found = {f"{family}{int(day)}" for family in families} & symbols
    return found.pop() if len(found) == 1 else None


def spike_in(names: np.ndarray) -> np.ndarray:
    """Which labels are ERCC spike-ins (``ERCC-00002``)."""
    return np.array([bool(_SPIKE_IN.match(n)) for n in names], dtype=bool)


def excel_dates(names: np.ndarray) -> list[str]:
    """Labels that look like gene symbols turned into dates by a spreadsheet."""
    return [n for n in names if _EXCEL_DATE.match(n)]


def report(
    names: np.ndarray, *, n_duplicate_rows: int, n_versions_stripped: int, policy: GeneIds,
    mapping: dict[str, int] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The per-build gene report stored in ``uns["gseio"]["genes"]`` (h5ad-writable types only)."""
    dates = excel_dates(names)
    return {
        **{key: int(value) for key, value in (mapping or {}).items()},
        "policy": policy,
        "n_genes": len(names),
        "n_ensembl_versions_stripped": int(n_versions_stripped),
        "n_duplicate_rows": int(n_duplicate_rows),
        "n_spike_ins": int(spike_in(names).sum()),
        "n_excel_dates": len(dates),
        "excel_dates": np.array(dates[:50], dtype=object),
    }
