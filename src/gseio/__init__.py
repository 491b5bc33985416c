"""gseio: assemble GEO series supplementary files into sparse AnnData.

The public API is imported lazily, so ``import gseio`` and ``gseio --help`` stay fast.
"""

from __future__ import annotations

import logging
from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._version import __version__

# a library logs, the application decides where it goes (no stray messages on stderr by default)
logging.getLogger(__name__).addHandler(logging.NullHandler())

if TYPE_CHECKING:
    from . import genes, pp
    from ._registry import detect_format, list_formats
    from .assemble import read, read_gse_dir
    from .demo import make_demo
    from .export.h5ad import write_h5ad
    from .export.template import read_template, write_template
    from .inspect import inspect_input
    from .readers.bustools import read_bustools
    from .readers.cell_table import read_cell_table
    from .readers.dropseq import read_dropseq
    from .readers.featurecounts import read_featurecounts
    from .readers.gct import read_gct
    from .readers.h5ad import read_h5ad_file
    from .readers.htseq import read_htseq
    from .readers.kallisto import read_kallisto
    from .readers.loom import read_loom
    from .readers.rsem import read_rsem
    from .readers.salmon import read_salmon
    from .readers.star import read_star
    from .readers.tenx_h5 import read_10x_h5
    from .readers.tenx_mtx import read_10x_mtx
    from .readers.umi_tools import read_umi_tools
    from .readers.wide_table import read_wide_table
    from .report import build_report, check_outputs

_LAZY = {
    "read_gse_dir": ".assemble",
    "read": ".assemble",
    "read_cell_table": ".readers.cell_table",
    "detect_format": "._registry",
    "list_formats": "._registry",
    "write_template": ".export.template",
    "read_template": ".export.template",
    "write_h5ad": ".export.h5ad",
    "make_demo": ".demo",
    "errors": ".errors",
    "pp": ".pp",
    "genes": ".genes",
    "inspect_input": ".inspect",
    "read_10x_mtx": ".readers.tenx_mtx",
    "read_10x_h5": ".readers.tenx_h5",
    "read_bustools": ".readers.bustools",
    "read_htseq": ".readers.htseq",
    "read_featurecounts": ".readers.featurecounts",
    "read_star": ".readers.star",
    "read_rsem": ".readers.rsem",
    "read_kallisto": ".readers.kallisto",
    "read_salmon": ".readers.salmon",
    "read_wide_table": ".readers.wide_table",
    "read_umi_tools": ".readers.umi_tools",
    "read_dropseq": ".readers.dropseq",
    "read_gct": ".readers.gct",
    "read_loom": ".readers.loom",
    "read_h5ad_file": ".readers.h5ad",
    "build_report": ".report",
    "check_outputs": ".report",
}

_MODULES = {"errors", "genes", "pp"}  # submodules served as such, not functions from them

__all__ = [
    "__version__",
    "build_report",
    "check_outputs",
    "detect_format",
    "errors",
    "genes",
    "inspect_input",
    "list_formats",
    "make_demo",
    "pp",
    "read",
    "read_10x_h5",
    "read_10x_mtx",
    "read_bustools",
    "read_cell_table",
    "read_dropseq",
    "read_featurecounts",
    "read_gct",
    "read_gse_dir",
    "read_h5ad_file",
    "read_htseq",
    "read_kallisto",
    "read_loom",
    "read_rsem",
    "read_salmon",
    "read_star",
    "read_template",
    "read_umi_tools",
    "read_wide_table",
    "write_h5ad",
    "write_template",
]


def __getattr__(name: str) -> Any:
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'gseio' has no attribute {name!r}") from None
    value = import_module(module, __name__)
    if name not in _MODULES:
        value = getattr(value, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
