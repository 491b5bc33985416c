"""Exporters: the platform's template folder and h5ad files."""

from __future__ import annotations

from .h5ad import write_h5ad
from .template import read_template, write_template

__all__ = ["read_template", "write_h5ad", "write_template"]
