"""The conservation check: the outputs, re-read from disk, hold exactly what the build read.

:func:`check_outputs` (re-exported by :mod:`gseio.report`) re-reads the ``.h5ad`` in
blocks, streams the template's ``.mtx``, and reads the template's name tables the way the
platform does, so that a name the platform would read back changed (``NA`` as a missing
value, ``01`` as a number) fails the build instead of reaching a curator.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _h5ad_totals(path: Path) -> tuple[int, float, int]:
    """Cells, sum of ``X`` and its non-zeros, read from the file in blocks (CSR or dense)."""
    import h5py

    with h5py.File(path, "r") as f:
        X = f["X"]
        if isinstance(X, h5py.Dataset):  # dense
            total = sum(float(X[i : i + 4096].sum(dtype=np.float64)) for i in range(0, X.shape[0], 4096))
            return int(X.shape[0]), total, int(np.count_nonzero(X[()]))
        data, indptr = X["data"], X["indptr"]
        total, block = 0.0, 1 << 24
        for start in range(0, data.shape[0], block):
            total += float(data[start : start + block].sum(dtype=np.float64))
        return int(indptr.shape[0] - 1), total, int(data.shape[0])


def _mtx_totals(path: Path) -> tuple[tuple[int, int, int], float, int]:
    """The size line, the sum of the values and the number of entries of a Matrix Market file, streamed."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from .report import ConservationError

    header_lines, size = 0, None
    with open(path, "rb") as fh:
        for line in fh:
            header_lines += 1
            if not line.startswith(b"%") and line.strip():
                size = tuple(int(x) for x in line.split())
                break
    if size is None or len(size) != 3:
        raise ConservationError("the written matrix has no size line", path=path)
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(skip_rows=header_lines, column_names=["i", "j", "v"], block_size=1 << 24),
        parse_options=pacsv.ParseOptions(delimiter=" "),
        convert_options=pacsv.ConvertOptions(column_types={"i": pa.int64(), "j": pa.int64(), "v": pa.float64()}),
    )
    total, entries = 0.0, 0
    for batch in reader:
        total += float(np.sum(batch.column(2).to_numpy(), dtype=np.float64))
        entries += batch.num_rows
    return size, total, entries  # type: ignore[return-value]


def _h5ad_names(path: Path) -> tuple[list[str], list[str]]:
    """The cell and gene names an h5ad holds (the ``obs`` and ``var`` indexes), without reading ``X``."""
    import h5py

    names = []
    with h5py.File(path, "r") as f:
        for key in ("obs", "var"):
            group = f[key]
            index = group[group.attrs["_index"]]
            values = index.asstr()[()] if h5py.check_string_dtype(index.dtype) else index[()]
            names.append([str(v) for v in values])
    return names[0], names[1]


def _column_problems(path: Path, header: str, expected: Sequence[str] | None, what: str) -> tuple[list[str], int]:
    r"""Check a table's first column as the platform reads it; its problems and its number of rows.

    The platform reads with ``pandas.read_csv(path, sep="\t")`` and pandas' defaults: a
    name such as ``NA`` or ``null`` comes back missing, ``01`` as the number 1, an empty
    line is skipped. The column read back must equal the text written, line by line, and
    the text the names of the matrix (``expected``), in order.
    """
    import pandas as pd

    text = path.read_text(encoding="utf-8", errors="surrogateescape")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    written = [line.split("\t", 1)[0] for line in lines[1:]]
    problems: list[str] = []
    if not lines or lines[0].split("\t", 1)[0] != header:
        problems.append(f"{path.name} does not start with the header {header!r}")
    try:
        frame = pd.read_csv(path, sep="\t")  # exactly as the platform reads it
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as e:
        return [*problems, f"{path.name} cannot be read by pandas: {e}"], len(written)
    if header not in frame.columns:
        return [*problems, f"pandas reads no {header!r} column from {path.name}"], len(written)
    column = frame[header]
    missing = column.isna().to_numpy()
    if missing.any():
        row = int(missing.argmax())
        example = written[row] if row < len(written) else ""
        problems.append(f"the platform reads {int(missing.sum())} {what} of {path.name} as missing values "
                        f"(e.g. line {row + 2}, {example!r}): rename them")  # fmt: skip
    read_back = [str(v) for v in column.tolist()]
    if len(read_back) != len(written):
        problems.append(f"the platform reads {len(read_back)} {what} from {path.name}, which has {len(written)} "
                        "(an empty name is skipped)")  # fmt: skip
    elif not missing.any() and read_back != written:
        row = next(i for i, (a, b) in enumerate(zip(read_back, written, strict=True)) if a != b)
        problems.append(f"the platform reads line {row + 2} of {path.name}, {written[row]!r}, "
                        f"as {read_back[row]!r}")  # fmt: skip
    if expected is not None:
        wanted = [str(v) for v in expected]
        if written != wanted:
            row = next((i for i, (a, b) in enumerate(zip(written, wanted, strict=False)) if a != b), None)
            problems.append(
                f"{path.name} lists {len(written)} {what}, the matrix has {len(wanted)}" if row is None
                else f"line {row + 2} of {path.name} is {written[row]!r}, the matrix's {what} {row + 1} is "
                f"{wanted[row]!r}"
            )  # fmt: skip
    return problems, len(written)


def check_outputs(report: dict[str, Any], *, h5ad: str | Path | None = None,
                  template: str | Path | None = None, cells: Sequence[str] | None = None,
                  genes: Sequence[str] | None = None) -> dict[str, Any]:  # fmt: skip
    r"""Re-read written outputs and check they hold the cells and counts of the units read.

    The template's ``cellID_rawCounts.tsv`` and ``genes_rawCounts.tsv`` (and the
    ``cellID`` column of ``cellAnnotation.tsv``) are read as the platform reads them,
    ``pandas.read_csv(path, sep="\t")`` with pandas' defaults, and must give back, as
    text, exactly the names written: no name read as missing (``NA``, ``null``, ``NaN``...)
    or as another number (``01``), none skipped; and the names of the matrix, in order.

    Parameters
    ----------
    report
        The build's report (:func:`build_report`).
    h5ad
        An ``.h5ad`` written from the build.
    template
        A folder holding the template files written from the build
        (``expressionMatrix_rawCounts.mtx``, ``cellID_rawCounts.tsv``, ...).
    cells, genes
        The cell and gene names of the matrix built, in order: the template's tables and
        the h5ad must hold exactly these. Default: the h5ad's names, when it is given.

    Returns
    -------
    The ``conservation`` section for the report: expected and found cells and counts per
    output, the tolerance used, and ``ok``.

    Raises
    ------
    ConservationError
        An output holds other cells, names or counts than the units read (the message
        says which), or a gseio build was interrupted while it replaced the folder's files
        one by one (they may mix two builds).
    """
    from .export._publish import PUBLISHING_MARKER
    from .report import ConservationError

    totals = report["totals"]
    n_cells, counts = int(totals["cells"]), float(totals["total_counts"])
    # sums of integers below 2**53 are exact in any order; other values may differ in the last bits
    tolerance = 0.0 if totals.get("integer_counts") else 1e-6 * max(1.0, abs(counts))
    found: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    folders = {Path(p) for p in (template,) if p is not None} | {Path(p).parent for p in (h5ad,) if p is not None}
    for folder in sorted(folders):
        if (folder / PUBLISHING_MARKER).exists():
            problems.append(f"{PUBLISHING_MARKER} in {folder}: a build was interrupted while it replaced the "
                            "files one by one, they may mix two builds")  # fmt: skip
    if h5ad is not None:
        n, total, nnz = _h5ad_totals(Path(h5ad))
        found[Path(h5ad).name] = {"cells": n, "total_counts": total, "nnz": nnz}
        h5ad_cells, h5ad_genes = _h5ad_names(Path(h5ad))
        for label, names, wanted in (("cell", h5ad_cells, cells), ("gene", h5ad_genes, genes)):
            if wanted is not None and names != [str(v) for v in wanted]:
                problems.append(f"{Path(h5ad).name} holds other {label} names than the matrix built")
        cells = h5ad_cells if cells is None else cells
        genes = h5ad_genes if genes is None else genes
    if template is not None:
        from .export.template import CELL_ANNOTATION, RAW_CELLS, RAW_GENES, RAW_MATRIX

        folder = Path(template)
        (n_rows, n_cols, declared), total, entries = _mtx_totals(folder / RAW_MATRIX)
        cell_problems, n_ids = _column_problems(folder / RAW_CELLS, "cellID", cells, "cell ids")
        gene_problems, n_genes = _column_problems(folder / RAW_GENES, "genes", genes, "genes")
        problems += cell_problems + gene_problems
        if (folder / CELL_ANNOTATION).is_file():
            problems += _column_problems(folder / CELL_ANNOTATION, "cellID", cells, "cell ids")[0]
        found[RAW_MATRIX] = {"cells": n_rows, "genes": n_cols, "total_counts": total, "nnz": entries,
                             "declared_nnz": declared, "cell_ids": n_ids, "gene_names": n_genes}  # fmt: skip
        if entries != declared:
            problems.append(f"{RAW_MATRIX} declares {declared} entries but holds {entries}")
        if n_ids != n_rows:
            problems.append(f"{RAW_CELLS} lists {n_ids} cells for a matrix of {n_rows} rows")
        if n_genes != n_cols:
            problems.append(f"{RAW_GENES} lists {n_genes} genes for a matrix of {n_cols} columns")
    for name, got in found.items():
        if got["cells"] != n_cells:
            problems.append(f"{name} holds {got['cells']:,} cells; the units read hold {n_cells:,}")
        if abs(got["total_counts"] - counts) > tolerance:
            problems.append(f"{name} sums to {got['total_counts']!r}; the units read sum to {counts!r}")
    if len({got["nnz"] for got in found.values()}) > 1:
        problems.append("the outputs hold different numbers of non-zeros: " +
                        ", ".join(f"{k} {v['nnz']:,}" for k, v in found.items()))  # fmt: skip
    section = {"ok": not problems, "expected": {"cells": n_cells, "total_counts": counts}, "tolerance": tolerance,
               "found": found, "problems": problems}  # fmt: skip
    if problems:
        error = ConservationError("the outputs do not hold what was read: " + "; ".join(problems),
                                  path=h5ad or template)  # fmt: skip
        error.section = section  # type: ignore[attr-defined]
        raise error
    return section
