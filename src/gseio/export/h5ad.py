"""Write h5ad files atomically."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import OutputError
from ._atomic import atomic_outputs

if TYPE_CHECKING:
    from anndata import AnnData


def write_h5ad(adata: AnnData, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write ``adata`` to ``path`` through a temporary file, so a crash leaves no partial file.

    Parameters
    ----------
    adata
        The data to write (e.g. from :func:`gseio.read_gse_dir`).
    path
        The ``.h5ad`` file to create.
    overwrite
        Replace an existing file (only once the new one is complete).

    Returns
    -------
    The path written.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputError("exists already; pass overwrite=True to replace it", path=path)
    if not path.parent.is_dir():
        raise OutputError("the folder does not exist", path=path.parent)
    with atomic_outputs([path]) as (tmp,):
        adata.write_h5ad(tmp)
    return path
