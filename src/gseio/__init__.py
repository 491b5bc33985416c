"""gseio: assemble GEO series supplementary files into sparse AnnData.

The public API is imported lazily, so ``import gseio`` and ``gseio --help`` stay fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from ._registry import detect_format, list_formats
    from .assemble import read, read_gse_dir
    from .demo import make_demo
    from .export.h5ad import write_h5ad
    from .export.template import read_template, write_template
    from .readers.cell_table import read_cell_table

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
}

__all__ = [
    "__version__",
    "detect_format",
    "errors",
    "list_formats",
    "make_demo",
    "read",
    "read_cell_table",
    "read_gse_dir",
    "read_template",
    "write_h5ad",
    "write_template",
]


def __getattr__(name: str) -> Any:
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'gseio' has no attribute {name!r}") from None
    value = import_module(module, __name__)
    if name != "errors":
        value = getattr(value, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
