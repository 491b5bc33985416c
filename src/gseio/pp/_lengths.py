"""Gene lengths for TPM: from a table, from ``var``, or from the quantifiers' own length columns.

Lengths are matched to the matrix's genes by Ensembl ID (versions aside) when the genes are
IDs, else by symbol; how every gene got its length (or the median) is reported.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._version import __version__
from ..errors import GseioError, GseioWarning
from ._protocols import Protocol

if TYPE_CHECKING:
    from anndata import AnnData

_ENSEMBL_VERSION = re.compile(r"^(ENS[A-Z]*[GTPE]\d{11})\.\d+")  # GENCODE's _PAR_Y suffix, if any, is kept
_SYMBOL_COLUMNS = ("gene_symbols", "gene_symbol", "gene_name", "symbol", "Gene_name")
_ID_COLUMNS = ("gene_id", "gene_ids", "Gene_ID")


class TPMError(GseioError, ValueError):
    """TPM cannot be computed with the options and data given."""


class GeneLengthError(TPMError):
    """Gene lengths are needed but missing (no source at all, or some genes under ``missing_length="error"``)."""


def _column_factors(
    adata: AnnData,
    protocol: Protocol,
    lengths: pd.Series | pd.DataFrame | None,
    length_column: str,
    missing_length: str,
    spike_in_prefix: str | tuple[str, ...] | None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Each gene's multiplier (``1 / length``, 1, or 0 for excluded genes) and the provenance record."""
    names = adata.var_names.astype(str)
    spike = np.asarray(names.str.startswith(spike_in_prefix) if spike_in_prefix else np.zeros(len(names)), bool)
    factor = np.where(spike, 0.0, 1.0)
    provenance: dict[str, Any] = {
        "formula": (
            "TPM[cell, g] = 1e6 * w[cell, g] / sum of w[cell, h] over non-spike-in genes h, where "
            + ("w = counts / length[g]" if protocol.full_length else "w = counts")
            + (f"; spike-ins (names starting {spike_in_prefix!r}) are 0" if spike_in_prefix else "")
        ),
        "protocol_resolved": protocol.name,
        "length_normalised": protocol.full_length,
        "spike_in_prefix": "" if not spike_in_prefix else str(spike_in_prefix),
        "n_spike_ins_excluded": int(spike.sum()),
        "length_source": "none",
        "length_column": "",
        "length_checksum": "",
        "missing_length": missing_length,
        "n_genes_length_missing": 0,
        "n_genes_length_by_symbol": 0,
        "gseio_version": __version__,
    }
    if not protocol.full_length:
        if lengths is not None:
            why = f"{protocol.name} counts molecules, so TPM does not divide by gene length"
            warnings.warn(f"lengths are ignored: {why}", GseioWarning, stacklevel=3)
        return factor, provenance
    used, source, by_symbol = _gene_lengths(adata, lengths, length_column)
    known = np.isfinite(used) & (used > 0) & ~spike
    n_missing = int((~known & ~spike).sum())
    if not known.any():
        found = f"none of the {int((~spike).sum())} genes has a known length in {source}"
        raise GeneLengthError(
            f"{protocol.name} is a full-length protocol: counts are divided by gene length, but "
            f"{found if source != 'none' else f'there is no var[{length_column!r}] column and no lengths='}. "
            f"Lengths come from lengths= (a Series indexed by gene, or a gene table with a {length_column!r} "
            f"column, e.g. built from a GTF), or from var[{length_column!r}] as the featureCounts, RSEM, "
            "kallisto and salmon readers fill it"
        )
    if n_missing and missing_length == "error":
        sample = ", ".join(names[~known & ~spike][:10])
        raise GeneLengthError(
            f"{n_missing} genes have no known length in {source} (e.g. {sample}); pass "
            "missing_length='median' (the platform's rule) or 'drop', or complete the lengths"
        )
    used = np.where(known, used, np.nan)
    if missing_length == "median":
        fill = float(np.median(used[known]))
        used = np.where(spike | known, used, fill)
        provenance["missing_length_fill"] = fill
    usable = np.isfinite(used)
    factor = np.zeros(len(names))
    factor[usable] = 1.0 / used[usable]
    provenance.update(
        length_source=source,
        length_column="" if isinstance(lengths, pd.Series) else length_column,
        length_checksum="blake2b:" + hashlib.blake2b(used.astype("<f8").tobytes(), digest_size=16).hexdigest(),
        n_genes_length_missing=n_missing,
        n_genes_length_by_symbol=by_symbol,
    )
    return factor, provenance


def _gene_lengths(
    adata: AnnData, lengths: pd.Series | pd.DataFrame | None, length_column: str
) -> tuple[np.ndarray, str, int]:
    """Per-gene lengths in ``var`` order (NaN unknown), where they came from, and how many matched by symbol."""
    if lengths is None:
        if length_column in adata.var.columns:
            values = pd.to_numeric(adata.var[length_column], errors="coerce").to_numpy(np.float64)
            return values, f"var[{length_column!r}]", 0
        return np.full(adata.n_vars, np.nan), "none", 0
    table = _length_table(lengths, length_column)
    found = table.reindex(_keys(adata.var_names)).to_numpy(np.float64)
    missing = np.isnan(found) & np.asarray(adata.var_names.astype(str).str.endswith("_PAR_Y"), bool)
    if missing.any():  # a GENCODE PAR_Y copy has the length of its X-chromosome gene
        found[missing] = table.reindex(_keys(adata.var_names[missing].str[: -len("_PAR_Y")])).to_numpy(np.float64)
    by_symbol = 0
    if "gene_symbols" in adata.var.columns and np.isnan(found).any():
        missing = np.isnan(found)
        symbols = pd.Index(adata.var["gene_symbols"].astype(object).where(adata.var["gene_symbols"].notna(), ""))
        found[missing] = table.reindex(_keys(symbols[missing])).to_numpy(np.float64)
        by_symbol = int((missing & ~np.isnan(found)).sum())
    return found, "argument", by_symbol


def _length_table(lengths: pd.Series | pd.DataFrame, length_column: str) -> pd.Series:
    """One Series, lengths by every name a gene may be looked up by (ids first, then symbols)."""
    if isinstance(lengths, pd.Series):
        parts = [lengths]
    elif isinstance(lengths, pd.DataFrame):
        column = length_column if length_column in lengths.columns else "Gene_length"
        if column not in lengths.columns:
            raise GeneLengthError(
                f"the lengths table has no {length_column!r} column (has {', '.join(map(str, lengths.columns))})"
            )
        values = lengths[column]
        parts = [] if isinstance(lengths.index, pd.RangeIndex) else [values]
        for name in (*_ID_COLUMNS, *_SYMBOL_COLUMNS):
            if name in lengths.columns:
                parts.append(pd.Series(values.to_numpy(), index=pd.Index(lengths[name].astype(str))))
    else:
        raise TypeError(f"lengths must be a pandas Series or DataFrame, not {type(lengths).__name__}")
    table = pd.concat(parts) if parts else pd.Series(dtype=np.float64)
    table = pd.to_numeric(table, errors="coerce").astype(np.float64)
    table.index = _keys(table.index)
    return table[~table.index.duplicated(keep="first")]


def _keys(names: pd.Index) -> pd.Index:
    """Lookup keys: names as strings, Ensembl version suffixes removed."""
    # the regex only where it can match: a 60,000-gene index is looked up in milliseconds
    sub = _ENSEMBL_VERSION.sub
    return pd.Index(
        [sub(r"\1", n) if n.startswith("ENS") and "." in n else n for n in map(str, names)], dtype=object
    )
