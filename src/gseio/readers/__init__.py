"""Input format readers, one module per format; importing this package registers them all.

Every public module here (a name not starting with ``_``) is imported, so adding a
format is adding a module that calls :func:`gseio._registry.register_format`.
"""

from __future__ import annotations

import importlib
import pkgutil

__all__: list[str] = []

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")):
    importlib.import_module(f"{__name__}.{_module}")
    __all__.append(_module)
