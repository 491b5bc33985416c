"""Fuzzing the readers and sniffers with mutated real files.

Property 1: whatever is done to a real file (bytes flipped, cut at a random point, bytes
inserted or deleted, lines duplicated, dropped or swapped, replaced by random bytes, emptied,
gzip-compressed after the damage, or damaged after gzip), reading it with its format's reader
and sniffing it with :func:`gseio.detect_format` raise nothing but gseio's own
:class:`~gseio.errors.GseioError` subclasses, and no sniffer fails (a failing sniffer is a
warning and counts as no match).

Property 2: one digit of one count field of a real text count file is changed. If the file
is still read, the matrix differs from the unchanged file's at exactly that cell and gene,
by exactly the difference of the two numbers: a changed count is never read as the old one,
dropped, or moved.

Large real files are cut to their first lines (and the last few, where the special counters
are) so that each example stays fast; GCT's dimension line is set to the rows kept.
"""

from __future__ import annotations

import contextlib
import gzip
import itertools
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gseio
from conftest import REALDATA
from gseio.errors import GseioError


@dataclass(frozen=True)
class Seed:
    """A real file (or folder of files) for one reader format."""

    format: str
    path: str  # relative to realdata
    head: int | None = None  # keep only the first lines of a large file...
    tail: int = 0  # ...and its last lines
    files: tuple[str, ...] = ()  # a folder: the files of the unit
    options: dict = field(default_factory=dict)


SEEDS = {
    "cell_table": Seed("cell_table", "htseq/yeast_RNASeq_excerpt_withNH_counts.tsv", head=60, tail=5),
    "cell_table_header": Seed("cell_table", "umi_tools/UMI-tools/count_tab.tsv"),
    "wide_table": Seed("wide_table", "wide_matrix/gemma/GSE19166_expression_count.test.txt", head=40),
    "wide_table_csv": Seed("wide_table", "wide_matrix/pytximport/fabry_disease/counts_tximport_no.csv", head=40),
    "wide_table_barcodes": Seed("wide_table", "htseq/yeast_RNASeq_excerpt_withbarcodes.tsv", head=40, tail=5),
    "htseq": Seed("htseq", "htseq/yeast_RNASeq_excerpt_withNH_counts_twocolumns.tsv", head=40, tail=5),
    "htseq_attributes": Seed("htseq", "htseq/multiqc/issue_2114/WTCHG_536273_229157.tsv", head=40, tail=5),
    "featurecounts": Seed("featurecounts", "featurecounts/GenomicsAotearoa/yeast_counts_all_chr.txt", head=40),
    "featurecounts_summary": Seed("featurecounts_summary", "featurecounts/multiqc/Test1.counts.summary"),
    "star": Seed(
        "star", "star/ERR458837_subsamp_1ReadsPerGene.out.tab", head=40, options={"strandedness": "unstranded"}
    ),
    "rsem": Seed("rsem", "rsem/tximportData/ERR188021/ERR188021.genes.results.gz", head=40),
    "kallisto": Seed("kallisto", "kallisto/sleuth_small_test_data/kallisto/abundance.tsv"),
    "kallisto_h5": Seed("kallisto", "kallisto/sleuth_small_test_data/kallisto/abundance.h5"),
    "salmon": Seed("salmon", "salmon/nf-core_test-datasets/WT_REP1/quant.sf", head=40),
    "salmon_genes": Seed("salmon", "salmon/nf-core_test-datasets/WT_REP1/quant.genes.sf", head=40),
    "umi_tools": Seed("umi_tools", "umi_tools/UMI-tools/count_single_cells_gene_tag.tsv"),
    "umi_tools_cell_first": Seed("umi_tools", "umi_tools/UMI-tools/count_tab_cell.tsv"),
    "umi_tools_wide": Seed("umi_tools", "umi_tools/UMI-tools/count_single_cells_gene_tag_wide.tsv"),
    "dropseq": Seed("dropseq", "dropseq_dge/test_with_header.dge.txt.gz"),
    "dropseq_old": Seed("dropseq", "dropseq_dge/P60ENTSTNRep1P1.subset.auto.digital_expression.txt", head=30),
    "gct": Seed("gct", "gct/rnaseqc/downsampled.bam.gene_reads.gct", head=43),
    "tenx_mtx": Seed(
        "tenx_mtx", "10x_v3/seurat/cr3.0", files=("matrix.mtx.gz", "barcodes.tsv.gz", "features.tsv.gz")
    ),
    "tenx_mtx_v2": Seed(
        "tenx_mtx",
        "10x_v2/scanpy/1.2.0/filtered_gene_bc_matrices/hg19_chr21",
        files=("matrix.mtx", "barcodes.tsv", "genes.tsv"),
    ),
    "bustools": Seed(
        "bustools",
        "bustools/kb_python/lamanno/counts",
        files=("spliced.mtx", "spliced.barcodes.txt", "spliced.genes.txt"),
    ),
    "tenx_h5": Seed("tenx_h5", "10x_h5_xenium/multiqc/sample1/cell_feature_matrix.h5"),
    "tenx_h5_v2": Seed("tenx_h5", "10x_v2/scanpy/1.2.0/filtered_gene_bc_matrices_h5.h5"),
    "loom": Seed("loom", "loom/htseq/bamfile_no_qualities.loom"),
    "h5ad": Seed("h5ad", "h5ad/htseq/bamfile_no_qualities.h5ad"),
    # files that are recognised but are not expression data: their sniffers are fuzzed too
    "geo_soft": Seed("geo_soft", "geo_soft/GEOparse/GSM2795971.txt"),
    "geo_series_matrix": Seed(
        "geo_series_matrix", "geo_series_matrix/SeriesMatrixIO/GSE285754_series_matrix.txt.gz", head=60
    ),
    "gtf": Seed("gtf", "gtf/pytximport/annotation.gtf", head=40),
    "tx2gene": Seed("tx2gene", "tx2gene/sleuth/target_mapping.txt"),
}


def _decompressed(path: Path) -> bytes:
    raw = path.read_bytes()
    return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw


@cache
def seed_bytes(key: str, name: str) -> bytes:
    """The real file's bytes (decompressed, cut to its head and tail for large files)."""
    seed = SEEDS[key]
    source = REALDATA / seed.path
    data = _decompressed(source / name if seed.files else source)
    if seed.head is None:
        return data
    lines = data.split(b"\n")
    kept = lines[: seed.head] + (lines[-seed.tail - 1 :] if seed.tail else [b""])
    if seed.format == "gct":  # the dimension line must count the rows kept
        kept[1] = b"%d\t1" % (len(kept) - 4)
    return b"\n".join(kept)


def file_names(key: str) -> tuple[str, ...]:
    seed = SEEDS[key]
    return seed.files or (Path(seed.path).name.removesuffix(".gz"),)


# --- mutations ---------------------------------------------------------------------------------------------------

#: Bytes that mean something to some parser: separators, quotes, comment marks, odd numbers.
TOKENS = [
    b"\t", b"\n", b"\r", b"\r\n", b" ", b",", b'"', b"#", b"%", b"-", b"+", b".", b"e", b"nan", b"NaN", b"inf",
    b"-inf", b"1e999", b"-0", b"0x1F", b"99999999999999999999", b"\xff\xfe", b"\xef\xbb\xbf", b"\x00",
    b"__no_feature", b"N_unmapped", b"%%MatrixMarket matrix coordinate integer general\n", b"#1.2\n",
    b"\x89HDF\r\n\x1a\n",
]  # fmt: skip


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def mutate(draw: Callable, data: bytes) -> bytes:
    """Apply one to three random mutations to ``data``."""
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["flip", "truncate", "insert", "token", "delete", "duplicate_line", "drop_line",
                                   "swap_lines", "random", "empty"]))  # fmt: skip
        size = len(data)
        if op == "flip" and size:
            buffer = bytearray(data)
            for _ in range(draw(st.integers(1, 8))):
                buffer[draw(st.integers(0, size - 1))] ^= draw(st.integers(1, 255))
            data = bytes(buffer)
        elif op == "truncate":
            data = data[: draw(st.integers(0, size))]
        elif op in ("insert", "token"):
            at = draw(st.integers(0, size))
            piece = draw(st.binary(min_size=1, max_size=16)) if op == "insert" else draw(st.sampled_from(TOKENS))
            data = data[:at] + piece + data[at:]
        elif op == "delete" and size:
            at = draw(st.integers(0, size - 1))
            data = data[:at] + data[at + draw(st.integers(1, 64)) :]
        elif op in ("duplicate_line", "drop_line", "swap_lines"):
            lines = _lines(data)
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            if op == "duplicate_line":
                lines.insert(j, lines[i])
            elif op == "drop_line":
                del lines[i]
            else:
                lines[i], lines[j] = lines[j], lines[i]
            data = b"\n".join(lines)
        elif op == "random":
            data = draw(st.binary(max_size=300))
        elif op == "empty":
            data = b""
    wrap = draw(st.sampled_from(["plain", "plain", "gzip", "gzip_flipped", "gzip_truncated"]))
    if wrap == "plain":
        return data
    packed = bytearray(gzip.compress(data, mtime=0))
    if wrap == "gzip_flipped":
        packed[draw(st.integers(0, len(packed) - 1))] ^= draw(st.integers(1, 255))
    elif wrap == "gzip_truncated":
        packed = packed[: draw(st.integers(0, len(packed) - 1))]
    return bytes(packed)


# --- running a reader -------------------------------------------------------------------------------------------

_counter = itertools.count()


@pytest.fixture(scope="module")
def workdir(realdata: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")  # (realdata: its absence is a failure, never a skip)


def write_unit(workdir: Path, key: str, contents: dict[str, bytes]) -> Path:
    """A fresh folder with the unit's files (``contents`` by name, the rest unchanged); returns the main file."""
    folder = workdir / str(next(_counter)) / key  # the same folder name each time: some cells are named after it
    folder.mkdir(parents=True)
    for name in file_names(key):
        (folder / name).write_bytes(contents.get(name, seed_bytes(key, name)))
    return folder / file_names(key)[0]


def read_and_sniff(path: Path, seed: Seed, *, sniff: bool = True) -> None:
    """Read ``path`` with its format and sniff it: only GseioError may come out, and no sniffer may fail."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if sniff:
            with contextlib.suppress(GseioError):
                gseio.detect_format(path)
        with contextlib.suppress(GseioError):
            gseio.read(path, format=seed.format, **seed.options)
    failed = [str(w.message) for w in caught if "sniffer failed" in str(w.message)]
    assert not failed, failed


FUZZ = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,  # reproducible in CI; run with --hypothesis-seed and derandomize off to explore
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)


@pytest.mark.parametrize("key", sorted(SEEDS))
@FUZZ
@given(data=st.data())
def test_mutated_real_files_raise_only_gseio_errors(workdir, key, data):
    names = file_names(key)
    name = data.draw(st.sampled_from(names)) if len(names) > 1 else names[0]
    mutated = mutate(data.draw, seed_bytes(key, name))
    path = write_unit(workdir, key, {name: mutated})
    read_and_sniff(path, SEEDS[key], sniff=name == names[0])
    shutil.rmtree(path.parent.parent)


def test_the_unmutated_seeds_are_read(workdir):
    """The seeds themselves are valid files of their format (or recognised as their kind of non-data file)."""
    for key, seed in SEEDS.items():
        path = write_unit(workdir, key, {})
        if seed.format in ("featurecounts_summary", "geo_soft", "geo_series_matrix", "gtf", "tx2gene"):
            assert gseio.detect_format(path) == seed.format, key
            continue
        adata = gseio.read(path, format=seed.format, **seed.options)
        assert adata.n_obs, key
        assert adata.n_vars, key


# --- property 2: a changed digit changes exactly one value ----------------------------------------------------


@dataclass(frozen=True)
class Spot:
    """A count field: its line and field in the text, and the cell and gene it is in the output."""

    line: int  # 0-based
    column: int  # 0-based field
    cell: int | str  # obs position, or the cell id (obs["cell"])
    gene: str


def _rows(text: str, sep: str | None, skip: int) -> list[tuple[int, list[str]]]:
    return [(i, line.split(sep)) for i, line in enumerate(text.split("\n")) if i >= skip and line.strip()]


def _column_spots(text: str, *, skip: int, columns: Callable[[int], range], first: int, special=()) -> list[Spot]:
    """Spots of a table whose count columns are ``columns(width)``; the cell is the column's position."""
    spots = []
    for i, fields in _rows(text, "\t", skip):
        if fields[0].startswith(tuple(special)):
            continue
        spots += [Spot(i, j, j - first, fields[0]) for j in columns(len(fields))]
    return spots


def _mtx_spots(text: str, key: str, *, cells_on_rows: bool) -> list[Spot]:
    seed = SEEDS[key]
    genes_file = seed_bytes(key, seed.files[2]).decode().split("\n")
    genes = [line.split("\t")[0] for line in genes_file if line]
    lines = text.split("\n")
    size = next(i for i, line in enumerate(lines) if not line.startswith("%"))
    spots = []
    for i, line in enumerate(lines[size + 1 :], start=size + 1):
        if line.strip():
            row, col, _ = (int(float(v)) for v in line.split())
            cell, gene = (row, col) if cells_on_rows else (col, row)
            spots.append(Spot(i, 2, cell - 1, genes[gene - 1]))
    return spots


SPOTS: dict[str, Callable[[str], list[Spot]]] = {
    "cell_table": lambda t: _column_spots(t, skip=0, columns=lambda w: range(1, 2), first=1, special=("__",)),
    "cell_table_header": lambda t: _column_spots(t, skip=1, columns=lambda w: range(1, 2), first=1),
    "wide_table": lambda t: _column_spots(t, skip=1, columns=lambda w: range(1, w), first=1),
    "htseq": lambda t: _column_spots(t, skip=0, columns=lambda w: range(2, w), first=2, special=("__",)),
    "featurecounts": lambda t: _column_spots(t, skip=2, columns=lambda w: range(6, w), first=6),
    "star": lambda t: _column_spots(t, skip=4, columns=lambda w: range(1, 2), first=1),  # strandedness: column 2
    "rsem": lambda t: _column_spots(t, skip=1, columns=lambda w: range(4, 5), first=4),
    "kallisto": lambda t: _column_spots(t, skip=1, columns=lambda w: range(3, 4), first=3),
    "salmon": lambda t: _column_spots(t, skip=1, columns=lambda w: range(4, 5), first=4),
    "umi_tools": lambda t: [Spot(i, 2, f[1], f[0]) for i, f in _rows(t, "\t", 1)],
    "dropseq": lambda t: _column_spots(t, skip=4, columns=lambda w: range(1, w), first=1),
    "gct": lambda t: _column_spots(t, skip=3, columns=lambda w: range(2, 3), first=2),
    "tenx_mtx": lambda t: _mtx_spots(t, "tenx_mtx", cells_on_rows=False),
    "bustools": lambda t: _mtx_spots(t, "bustools", cells_on_rows=True),
}


def _dense(path: Path, seed: Seed):
    adata = gseio.read(path, format=seed.format, dtype="float64", **seed.options)
    return adata.X.toarray(), list(adata.obs_names), list(adata.obs["cell"]), list(adata.var_names)


def _edit_field(text: str, spot, fmt: str, new: str) -> bytes:
    """``text`` with the field at ``spot`` replaced by ``new``."""
    lines = text.split("\n")
    sep = " " if fmt in ("tenx_mtx", "bustools") else "\t"
    fields = lines[spot.line].split(sep)
    fields[spot.column] = new
    lines[spot.line] = sep.join(fields)
    return "\n".join(lines).encode()


def _field(text: str, spot, fmt: str) -> str:
    sep = " " if fmt in ("tenx_mtx", "bustools") else "\t"
    return text.split("\n")[spot.line].split(sep)[spot.column]


@pytest.mark.parametrize("key", sorted(SPOTS))
@settings(FUZZ, max_examples=40)
@given(data=st.data())
def test_a_changed_digit_changes_exactly_that_value(workdir, key, data):
    seed = SEEDS[key]
    name = file_names(key)[0]
    text = seed_bytes(key, name).decode()
    spot = data.draw(st.sampled_from(SPOTS[key](text)), label="spot")
    old = _field(text, spot, seed.format)
    digits = [k for k, c in enumerate(old) if c.isdigit()]
    k = data.draw(st.sampled_from(digits), label="digit")
    new = (
        old[:k]
        + data.draw(st.sampled_from([d for d in "0123456789" if d != old[k]]), label="new digit")
        + old[k + 1 :]
    )
    before = _dense(write_unit(workdir, key, {}), seed)
    path = write_unit(workdir, key, {name: _edit_field(text, spot, seed.format, new)})
    try:
        after = _dense(path, seed)
    except GseioError:  # a read may fail (a value is refused), but it must never be silently wrong
        return
    X0, obs0, cells0, var0 = before
    X1, obs1, _, var1 = after
    assert (obs1, var1) == (obs0, var0)
    row = spot.cell if isinstance(spot.cell, int) else cells0.index(spot.cell)
    col = var0.index(spot.gene)
    diff = X1 - X0
    expected = float(new) - float(old)
    assert diff[row, col] == pytest.approx(expected, rel=1e-12, abs=1e-9), (old, new, spot)
    diff[row, col] = 0
    assert not diff.any(), f"{old} -> {new} at {spot} changed other values"


#: Count fields that are not plain numbers: each must be refused, or read as the number it spells.
JUNK = [
    "1e5", "+3", " 5", "5 ", "0x10", "1_000", "1,5", "١٢", "１２", "5.", ".5", "5e", "e5", "--5", "5-", "1e-400",
    "1e400", "NaN", "NA", "N/A", "null", "inf", "Infinity", "-0", "\"5\"", "'5'", "5 6", "", " ", "1.5.5", "0b101",
    "5j", "½", "5d3", "$5", "5%", "∞", "true", "5\x00", "5\x003", "\x00", "\ufeff5",
]  # fmt: skip


def _as_written(token: str) -> float | None:
    """The number a field spells (quotes and blanks around it aside), else ``None``."""
    text = token.strip()
    if len(text) > 1 and text[0] == text[-1] == '"':
        text = text[1:-1].strip()
    try:
        return float(text)
    except ValueError:
        return None


@pytest.mark.parametrize("key", sorted(SPOTS))
@settings(FUZZ, max_examples=25)
@given(data=st.data())
def test_a_count_replaced_by_junk_is_refused_or_read_as_written(workdir, key, data):
    seed = SEEDS[key]
    name = file_names(key)[0]
    text = seed_bytes(key, name).decode()
    # in a file without a header, a first line whose count is no number is the header (it names the cell)
    spots = [s for s in SPOTS[key](text) if s.line > 0 or key not in ("cell_table", "htseq")]
    spot = data.draw(st.sampled_from(spots), label="spot")
    blanks = "\n\r\t," + (" " if seed.format in ("tenx_mtx", "bustools") else "")
    token = data.draw(
        st.one_of(
            st.sampled_from(JUNK), st.text(st.characters(exclude_characters=blanks, codec="utf-8"), max_size=6)
        ),
        label="token",
    )
    old = _field(text, spot, seed.format)
    X0, obs0, cells0, var0 = _dense(write_unit(workdir, key, {}), seed)
    try:
        X1, obs1, _, var1 = _dense(
            write_unit(workdir, key, {name: _edit_field(text, spot, seed.format, token)}), seed
        )
    except GseioError:
        return
    assert (obs1, var1) == (obs0, var0)
    row = spot.cell if isinstance(spot.cell, int) else cells0.index(spot.cell)
    col = var0.index(spot.gene)
    value = X1[row, col] - X0[row, col] + float(old)
    expected = _as_written(token)
    assert expected is not None, f"{token!r} is no number but was read as {value}"
    assert value == pytest.approx(expected, rel=1e-12, abs=1e-9), token
    diff = X1 - X0
    diff[row, col] = 0
    assert not diff.any()
