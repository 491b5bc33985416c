"""kallisto ``quant`` outputs: ``abundance.tsv`` and ``abundance.h5``.

``abundance.tsv`` has the header ``target_id length eff_length est_counts tpm``; ``abundance.h5``
holds the same in ``est_counts``, ``aux/ids``, ``aux/lengths`` and ``aux/eff_lengths`` (plus
bootstraps, not read), at full double precision where the TSV rounds to six digits.
``est_counts`` is read as counts (fractional: reads shared by expectation maximisation).

A kallisto output folder holds ``abundance.h5``, ``abundance.tsv`` and ``run_info.json``: it is
one sample, so :func:`group` makes one unit of it and reads the HDF5 file (else the TSV), never
both. ``run_info.json`` is checked when present: ``n_pseudoaligned`` (kallisto >= 0.43) should
equal the sum of ``est_counts`` up to rounding; the numbers are recorded in the notes.

kallisto quantifies transcripts. With ``tx2gene=`` the counts are summed per gene (see
:mod:`gseio.readers._tx2gene`); otherwise the transcripts are read as they are, with a note.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .. import _open, _warn
from .._options import DuplicateGenes
from .._piece import Piece
from .._registry import FormatSpec, register_format
from .._source import Source
from .._unit import ReadOptions, Unit
from ..errors import FormatError, InputError
from ..geo import cell_id_from_name
from . import _hdf5, _quant, _tx2gene

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["group", "read_kallisto", "read_unit", "sniff"]

TSV_HEADER = ("target_id", "length", "eff_length", "est_counts", "tpm")
H5_DATASETS = ("est_counts", "aux/ids", "aux/lengths", "aux/eff_lengths")
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
#: File names kallisto writes in its output folder, by role.
FOLDER_FILES = {"abundance.h5": "h5", "abundance.tsv": "tsv", "run_info.json": "run_info"}
#: Relative difference between n_pseudoaligned and the est_counts total that is reported.
RUN_INFO_TOLERANCE = 0.01


def sniff(head: bytes, source: Source) -> float:
    """Score a file as kallisto output: 1.0 for the TSV header or an HDF5 file with kallisto's datasets."""
    if head.startswith(HDF5_MAGIC):
        try:
            with _open.open_hdf5(source) as f:
                return 1.0 if all(name in f for name in H5_DATASETS) else 0.0
        except Exception:  # an unreadable HDF5 file is not ours to judge
            return 0.0
    return 1.0 if tuple(_quant.header_fields(head, limit=5)) == TSV_HEADER else 0.0


def group(sources: list[Source]) -> tuple[list[Unit], list[Source]]:
    """One unit per kallisto output folder (``abundance.h5`` preferred, else ``abundance.tsv``)."""
    return _quant.folder_units(sources, format="kallisto", roles=FOLDER_FILES, preference=("h5", "tsv"))


def cell_name(source: Source) -> str:
    """The folder name for kallisto's generic ``abundance.*`` names, else the file stem."""
    stem = cell_id_from_name(_open.strip_compression_suffix(source.name))
    if stem.lower() in ("abundance", "abundance.h5"):
        return cell_id_from_name(_quant.folder_name(source)) if _quant.folder_name(source) else stem
    return stem.removesuffix(".h5")


def _read_h5(source: Source) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    with _hdf5.reading(source), _open.open_hdf5(source) as f:  # a damaged file: CorruptFileError
        missing = [name for name in H5_DATASETS if name not in f]
        if missing:
            raise FormatError(f"not a kallisto abundance.h5: no {', '.join(missing)} dataset", path=source)
        ids = np.array(
            [i.decode("utf-8") if isinstance(i, bytes) else str(i) for i in f["aux/ids"][:]], dtype=object
        )
        counts = np.asarray(f["est_counts"][:], dtype=np.float64)
        lengths = {
            "length": np.asarray(f["aux/lengths"][:], dtype=np.float64),
            "effective_length": np.asarray(f["aux/eff_lengths"][:], dtype=np.float64),
        }
    if not (len(ids) == len(counts) == len(lengths["length"]) == len(lengths["effective_length"])):
        raise FormatError(
            f"aux/ids has {len(ids)} entries but est_counts {len(counts)} and aux/lengths "
            f"{len(lengths['length'])}: the datasets disagree",
            path=source,
        )
    return ids, counts, lengths


def _read_tsv(source: Source) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], int]:
    data = _quant.load_text(source)
    header = tuple(_quant.header_fields(data[:65536])[:5])
    if header != TSV_HEADER:
        raise FormatError(f"the header is {list(header)}, not kallisto's {' '.join(TSV_HEADER)}", path=source)
    table = _quant.parse_tsv(source, data, header=True, numeric=(1, 2, 3, 4))
    frame = table.frame
    ids = frame[0].to_numpy(dtype=object)
    lengths = {"length": frame[1].to_numpy(np.float64), "effective_length": frame[2].to_numpy(np.float64)}
    return ids, frame[3].to_numpy(np.float64), lengths, table.first_line


def _run_info(unit: Unit) -> dict | None:
    source = unit.sources.get("run_info")
    main = unit.main
    if source is None and not main.in_tar:  # not listed with the unit (e.g. left out by pattern=): beside it
        path = Path(main.path).parent / "run_info.json"
        try:
            found = os.lstat(path)
        except OSError:
            found = None
        # a regular file only, opened without following links: a run_info.json linking out is never read
        if found is not None and stat.S_ISREG(found.st_mode):
            source = Source.listed(path, rel="run_info.json", identity=(found.st_dev, found.st_ino), link=False)
    if source is None:
        return None
    try:
        return json.loads(_open.read_bytes(source))
    except (InputError, ValueError):
        return None


def _check_run_info(unit: Unit, counts: np.ndarray) -> dict[str, str]:
    info = _run_info(unit)
    if not info:
        return {}
    total = float(counts.sum())
    keys = ("n_processed", "n_pseudoaligned", "n_unique", "kallisto_version")
    note = ", ".join(f"{k}={info[k]}" for k in keys if k in info)
    n_aligned = info.get("n_pseudoaligned")
    aligned = isinstance(n_aligned, int | float) and n_aligned > 0
    if aligned and abs(total - n_aligned) > RUN_INFO_TOLERANCE * n_aligned:
        _warn.warn(
            f"{unit.main}: est_counts sum to {total:g} but run_info.json reports n_pseudoaligned={n_aligned}",
            stacklevel=2,
        )
    return {"kallisto_run_info": f"{note}; sum of est_counts {total:g}"}


def read_unit(unit: Unit, options: ReadOptions) -> list[Piece]:
    """Parse one kallisto output (HDF5 or TSV) into a one-cell :class:`~gseio._piece.Piece`."""
    source = unit.main
    first_line = 2
    with _open.open_decompressed(source) as fh:
        is_h5 = fh.read(len(HDF5_MAGIC)) == HDF5_MAGIC
    if is_h5:
        ids, counts, lengths = _read_h5(source)
    else:
        ids, counts, lengths, first_line = _read_tsv(source)
    line = None if is_h5 else first_line
    _quant.check_counts(counts[:, None], ids, source, first_line=line, what="est_counts")
    _quant.check_counts(np.column_stack(list(lengths.values())), ids, source, first_line=line, what="length")
    notes = _check_run_info(unit, counts)
    if len(unit.sources) > 1:
        skipped = [s.rel for role, s in unit.sources.items() if role in ("h5", "tsv")]
        if skipped:
            notes["kallisto_folder"] = f"read {source.rel}; {', '.join(skipped)} not read (same sample)"
    piece = _tx2gene.transcript_piece(
        source,
        cell_name(source),
        ids,
        counts,
        lengths,
        options,
        tool="kallisto",
        first_line=line,
        notes=notes,
    )
    return [piece]


def read_kallisto(
    path: str | os.PathLike[str],
    *,
    tx2gene: str | os.PathLike[str] | None = None,
    duplicate_genes: DuplicateGenes = "sum",
) -> AnnData:
    """Read a kallisto ``abundance.h5`` / ``abundance.tsv`` (or its output folder) into a one-cell AnnData.

    Parameters
    ----------
    path
        ``abundance.h5``, ``abundance.tsv`` (plain or compressed), or the folder holding them.
    tx2gene
        A transcript-to-gene table (2+ columns, TSV/CSV, header optional) or a GTF: the
        transcripts' ``est_counts`` are summed per gene. Without it, transcripts are read as
        they are (noted in ``uns["gseio"]["notes"]``).
    duplicate_genes
        An id repeated in the file: ``"sum"``, keep the ``"first"``, or ``"error"``.

    Returns
    -------
    AnnData with one cell named after the output folder (or the file stem); ``X`` holds
    ``est_counts``. At transcript level ``var`` holds ``length`` and ``effective_length``
    (kallisto's ``eff_length``, named as RSEM and salmon lengths are, so they share a
    column when formats are joined); after summarising to genes it holds no lengths
    (they would be per-sample weighted means).

    Raises
    ------
    ~gseio.errors.InputError
        Not kallisto output, ragged rows, a count that is not a finite number >= 0, or no
        transcript found in ``tx2gene``.
    """
    from ..assemble import read

    options = {} if tx2gene is None else {"tx2gene": Path(tx2gene)}
    return read(path, format="kallisto", duplicate_genes=duplicate_genes, **options)


register_format(
    FormatSpec(
        name="kallisto",
        description="kallisto quant abundance.h5 / abundance.tsv (estimated counts)",
        sniff=sniff,
        read_unit=read_unit,
        group=group,
        kind="bulk",
    )
)
