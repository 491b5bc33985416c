"""The platform's ``geneAnnotation.tsv``: symbol, Ensembl ID and versioned ID of every TPM column."""

from __future__ import annotations

import re

import pandas as pd

#: The platform's ``geneAnnotation.tsv`` columns, in order.
GENE_ANNOTATION_COLUMNS = ("geneSymbol", "ensemblID", "ensemblIDVersion", "geneID")
_ENSEMBL = re.compile(r"^(ENS[A-Z]*[GT]\d{11})(\.\d+)?(_PAR_Y)?$")


def _column(var: pd.DataFrame, name: str) -> pd.Series:
    if name not in var:
        return pd.Series(pd.NA, index=var.index, dtype=object)
    return var[name].astype(object).where(var[name].notna(), pd.NA)


def gene_annotation(var: pd.DataFrame, gene_table: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per gene of ``var`` (in order) with the platform's four columns.

    ``geneID`` is the matrix's own gene name. ``ensemblID`` is the name without its version
    when the name is an Ensembl ID, else the ID a ``gene_table`` gives the symbol (when the
    symbol is unique there). ``ensemblIDVersion`` comes from ``var["gene_id_version"]``,
    the name itself when versioned, or the gene table. ``geneSymbol`` comes from
    ``var["gene_symbols"]``, the name itself when it is not an Ensembl ID, or the gene
    table. Unknown values are ``pd.NA`` (written as ``notAvailable``).

    Parameters
    ----------
    var
        The AnnData's ``var`` (index: gene names).
    gene_table
        Optional: from :func:`gseio.genes.gene_table` (index: unversioned gene ID; columns
        ``gene_symbol`` and ``gene_id_version``).
    """
    names = pd.Series(var.index.astype(str), index=var.index)
    match = names.str.extract(_ENSEMBL.pattern)
    is_id = match[0].notna()
    ensembl = (match[0] + match[2].fillna("")).where(is_id, pd.NA)
    versioned = _column(var, "gene_id_version").fillna(names.where(is_id & match[1].notna(), pd.NA))
    symbol = _column(var, "gene_symbols").fillna(names.where(~is_id, pd.NA))
    if gene_table is not None and len(gene_table):
        table_symbol = gene_table.get("gene_symbol", pd.Series(dtype=object))
        table_version = gene_table.get("gene_id_version", pd.Series(dtype=object))
        unique = table_symbol.dropna()
        unique = unique[~unique.duplicated(keep=False)]
        by_symbol = pd.Series(unique.index, index=unique.to_numpy())
        ensembl = ensembl.fillna(symbol.map(by_symbol))
        symbol = symbol.fillna(ensembl.map(table_symbol))
        versioned = versioned.fillna(ensembl.map(table_version))
    frame = pd.DataFrame(
        {"geneSymbol": symbol, "ensemblID": ensembl, "ensemblIDVersion": versioned, "geneID": names}
    )
    return frame.reset_index(drop=True)
