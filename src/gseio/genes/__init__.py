"""Gene annotation: gene tables (ids, versions, symbols, lengths) from GTFs and length tables."""

from ._ensembl import fetch_ensembl_gtf
from .gtf import gene_table

__all__ = ["fetch_ensembl_gtf", "gene_table"]
