"""Input format readers, one module per format; importing this registers them all."""

from __future__ import annotations

from . import cell_table

__all__ = ["cell_table"]
