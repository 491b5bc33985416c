"""Sphinx configuration for the gseio documentation."""

from __future__ import annotations

import shutil
from pathlib import Path

import gseio

HERE = Path(__file__).resolve().parent

project = "gseio"
author = "gseio developers"
copyright = "2026, gseio developers"
release = version = gseio.__version__

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "numpydoc",
    "sphinx_click",
]
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
autosummary_generate = True
autodoc_typehints = "signature"
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
myst_enable_extensions = ["colon_fence", "deflist"]
nb_execution_mode = "off"  # the tutorial is executed by the test suite instead
html_theme = "pydata_sphinx_theme"
html_title = "gseio"
intersphinx_mapping = {}  # no network on our machines: keep the build offline
suppress_warnings = ["myst.header"]

# the tutorials live at the top of the repository; copy them in at build time
(HERE / "generated").mkdir(exist_ok=True)
for notebook in sorted((HERE.parent / "tutorials").glob("*.ipynb")):
    shutil.copyfile(notebook, HERE / "generated" / notebook.name)
