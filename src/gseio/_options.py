"""Choices of the user-facing options, shared by the Python API and the CLI.

Kept free of heavy imports so that the command line can build its options (and answer
``--help``) without loading numpy or pandas. The first choice of each is its default.
"""

from __future__ import annotations

from typing import Literal

OnError = Literal["raise", "skip"]
DuplicateGenes = Literal["sum", "first", "error"]
GeneOrder = Literal["first_seen", "sorted"]
DType = Literal["auto", "float32", "float64"]
GeneIds = Literal["auto", "exact"]
