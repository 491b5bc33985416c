"""Bad values injected into real files: each is a typed error that names the file and where.

Every case starts from a real file of ``../shared/realdata`` written by the real tool, changes
one thing in a copy under ``tmp_path`` (a count made negative, NaN, infinite or text, a row
with a field too few or too many, a header wider or narrower than the body, a cell id given
twice, an entry outside the declared shape, a declared entry count that the body does not
have) and reads the copy with :func:`gseio.read`. The read must raise exactly the expected
:class:`~gseio.errors.GseioError` subclass, name the file (``path=`` and the message), and say
where: the line, the column, the matrix entry or the cell id. A silently wrong matrix, or an
untyped error from the parsing libraries, fails the test.

Cases that are legitimately no error for a format are listed in :data:`NOT_ERRORS` with the
reason; a completeness test checks that every format meets every problem in one of the two
tables, so none is skipped without a word.
"""

from __future__ import annotations

import gzip
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import gseio
from gseio.errors import FormatError, GseioError, GseioWarning, InvalidValueError


@dataclass(frozen=True)
class Real:
    """A real file (or 10x folder) and where a count sits in it."""

    path: str  # relative to realdata
    format: str
    line: int  # 1-based file line of a data row (for 10x: of the matrix)
    column: int  # 0-based field of a count on that line
    header: int | None = None  # 1-based line of the header; None: no header
    options: dict = field(default_factory=dict)
    sep: str = "\t"
    target: str = ""  # 10x: the file of the folder edited by default


REAL = {
    "cell_table": Real("htseq/yeast_RNASeq_excerpt_withNH_counts.tsv", "cell_table", 10, 1),
    "cell_table_header": Real("umi_tools/UMI-tools/count_tab.tsv", "cell_table", 5, 1, header=1),
    "wide_table": Real("wide_matrix/gemma/GSE19166_expression_count.test.txt", "wide_table", 10, 3, header=1),
    # the same real table read as cells x genes: its rows are then cells, and a repeated row label a repeated cell
    "wide_table_cells_by_genes": Real(
        "wide_matrix/gemma/GSE19166_expression_count.test.txt",
        "wide_table",
        10,
        3,
        header=1,
        options={"orientation": "cells_by_genes"},
    ),
    "htseq": Real("htseq/yeast_RNASeq_excerpt_withNH_counts_twocolumns.tsv", "htseq", 10, 2),
    "featurecounts": Real(
        "featurecounts/GenomicsAotearoa/yeast_counts_all_chr.txt", "featurecounts", 10, 7, header=2
    ),
    "star": Real("star/ERR458837_subsamp_1ReadsPerGene.out.tab", "star", 10, 1),
    "rsem": Real("rsem/tximportData/ERR188021/ERR188021.genes.results.gz", "rsem", 10, 4, header=1),
    "kallisto": Real("kallisto/sleuth_small_test_data/kallisto/abundance.tsv", "kallisto", 10, 3, header=1),
    "salmon": Real("salmon/nf-core_test-datasets/WT_REP1/quant.sf", "salmon", 10, 4, header=1),
    "umi_tools": Real("umi_tools/UMI-tools/count_single_cells_gene_tag.tsv", "umi_tools", 10, 2, header=1),
    "umi_tools_wide": Real(
        "umi_tools/UMI-tools/count_single_cells_gene_tag_wide.tsv", "umi_tools", 10, 2, header=1
    ),
    "dropseq": Real("dropseq_dge/P60ENTSTNRep1P1.subset.auto.digital_expression.txt", "dropseq", 10, 3, header=4),
    "gct": Real("gct/rnaseqc/downsampled.bam.gene_reads.gct", "gct", 10, 2, header=3),
    # line 4 is the first entry, "1 1 110" (after the banner, a comment and the size line)
    "tenx_mtx": Real("10x_v3/seurat/cr3.0", "tenx_mtx", 4, 2, header=3, sep=" ", target="matrix.mtx"),
    # line 5 is the first entry, "6 16 1" (two comment lines, a size line); cells x genes
    "bustools": Real(
        "bustools/kb_python/lamanno/counts", "bustools", 5, 2, header=4, sep=" ", target="spliced.mtx"
    ),
}

Edit = Callable[[list[str], Real], list[str]]


def _set(value: str) -> Edit:
    def edit(lines: list[str], real: Real) -> list[str]:
        fields = lines[real.line - 1].split(real.sep)
        fields[real.column] = value
        lines[real.line - 1] = real.sep.join(fields)
        return lines

    return edit


def _fewer(lines: list[str], real: Real) -> list[str]:
    lines[real.line - 1] = lines[real.line - 1].rsplit(real.sep, 1)[0]
    return lines


def _more(lines: list[str], real: Real) -> list[str]:
    lines[real.line - 1] += real.sep + "7"
    return lines


def _header_wider(lines: list[str], real: Real) -> list[str]:
    lines[real.header - 1] += real.sep + "extra"
    return lines


def _header_narrower(lines: list[str], real: Real) -> list[str]:
    lines[real.header - 1] = lines[real.header - 1].rsplit(real.sep, 1)[0]
    return lines


def _duplicate_column(lines: list[str], real: Real) -> list[str]:
    """The header's count column ``real.column`` is named like the one before it."""
    fields = lines[real.header - 1].split(real.sep)
    fields[real.column] = fields[real.column - 1]
    lines[real.header - 1] = real.sep.join(fields)
    return lines


def _duplicate_row_label(lines: list[str], real: Real) -> list[str]:
    """Data line ``real.line`` gets the label of the line before it."""
    label = lines[real.line - 2].split(real.sep)[0]
    lines[real.line - 1] = real.sep.join([label, *lines[real.line - 1].split(real.sep)[1:]])
    return lines


def _gct_two_samples_one_name(lines: list[str], real: Real) -> list[str]:
    """Every row gets a second sample column, and the header names both ``Counts``."""
    lines[1] = lines[1].split("\t")[0] + "\t2"
    return lines[:2] + [line + "\t" + line.rsplit("\t", 1)[1] if line else line for line in lines[2:]]


def _gct_dimensions(lines: list[str], real: Real) -> list[str]:
    lines[1] = "56203\t1"  # one row more than the table holds
    return lines


def _line(number: int, text: str) -> Edit:
    def edit(lines: list[str], real: Real) -> list[str]:
        lines[number - 1] = text
        return lines

    return edit


def _copy_line(source: int, destination: int) -> Edit:
    def edit(lines: list[str], real: Real) -> list[str]:
        lines[destination - 1] = lines[source - 1]
        return lines

    return edit


def _drop_line(number: int) -> Edit:
    def edit(lines: list[str], real: Real) -> list[str]:
        return lines[: number - 1] + lines[number:]

    return edit


@dataclass(frozen=True)
class Case:
    """One problem injected into one real file, and the error it must give."""

    key: str  # in REAL
    problem: str
    edit: Edit
    error: type[GseioError]
    where: str  # a regex the message must match: the line, column, entry or cell id
    target: str | None = None  # 10x: which file of the folder (default: the matrix)
    named: str | None = None  # the file the error is about, when not the edited one (10x: files that disagree)
    file: str | None = None  # the edited file's new name (the file name is the cell id)
    folder: str | None = None  # the name of the folder the copy goes in (the folder name is the cell id)


def _value_cases(key: str, where: str) -> list[Case]:
    return [
        Case(key, "negative", _set("-5"), InvalidValueError, where),
        Case(key, "nan", _set("NaN"), InvalidValueError, where),
        Case(key, "inf", _set("inf"), InvalidValueError, where),
        Case(key, "text", _set("12x"), InvalidValueError, where),
        Case(key, "missing", _set(""), InvalidValueError, where),
    ]


def _text_cases() -> list[Case]:
    cases = []
    for key in (
        "cell_table",
        "cell_table_header",
        "wide_table",
        "htseq",
        "featurecounts",
        "star",
        "rsem",
        "kallisto",
        "salmon",
        "umi_tools",
        "umi_tools_wide",
        "dropseq",
        "gct",
    ):
        line = rf"\bline {REAL[key].line}\b"
        cases += _value_cases(key, line)
        cases.append(
            Case(key, "fewer_fields", _fewer, FormatError, rf"{line}: expected \d+ (tab-separated )?columns")
        )
        cases.append(
            Case(key, "more_fields", _more, FormatError, rf"{line}: expected \d+ (tab-separated )?columns")
        )
    return cases


CASES: list[Case] = [
    *_text_cases(),
    # --- header/body width mismatch
    Case("cell_table_header", "header_wider", _header_wider, FormatError, r"the first line has 3 columns"),
    Case(
        "cell_table_header",
        "header_narrower",
        _header_narrower,
        FormatError,
        r"the first line has a single column",
    ),
    *(
        Case(key, "header_wider", _header_wider, FormatError, r"header has \d+ columns but line 2 has")
        for key in ("wide_table", "umi_tools", "umi_tools_wide")
    ),
    # a header one field short is R's write.table layout (no corner field), unless its first field is a corner
    # word ("gene", "GENE", "Name"): then it names the label column and the header lost a field
    *(
        Case(key, "header_narrower", _header_narrower, FormatError, rf"header has \d+ columns but line {line} has")
        for key, line in (("wide_table", 2), ("umi_tools", 2), ("umi_tools_wide", 2), ("dropseq", 5), ("gct", 4))
    ),
    Case("dropseq", "header_wider", _header_wider, FormatError, r"header has 101 columns but line 5 has 100"),
    Case("gct", "header_wider", _header_wider, FormatError, r"header has 4 columns but line 4 has 3"),
    *(
        Case(key, "header_wider", _header_wider, FormatError, rf"line {line}: expected \d+ tab-separated columns")
        for key, line in (("featurecounts", 3), ("rsem", 2), ("kallisto", 2), ("salmon", 2))
    ),
    Case("featurecounts", "header_narrower", _header_narrower, FormatError, r"line 3: expected 11 tab-separated"),
    Case("rsem", "header_narrower", _header_narrower, FormatError, r"line 2: expected 6 tab-separated"),
    # kallisto and salmon headers are fixed: one name fewer is another header
    Case("kallisto", "header_narrower", _header_narrower, FormatError, r"the header is \[.*\], not kallisto's"),
    Case("salmon", "header_narrower", _header_narrower, FormatError, r"the header is \[.*\], not salmon's"),
    # --- a cell id twice inside one file (pandas would rename the second 'x.1' without a word)
    *(
        Case(
            key,
            "duplicate_cell",
            _duplicate_column,
            FormatError,
            rf"header column {REAL[key].column} and header column {REAL[key].column + 1}",
        )
        for key in ("wide_table", "umi_tools_wide", "dropseq")
    ),
    Case(
        "wide_table_cells_by_genes",
        "duplicate_cell",
        _duplicate_row_label,
        FormatError,
        r"cell id 'ENSG00000004487' is repeated \(line 9 and line 10\)",
    ),
    Case(
        "featurecounts", "duplicate_cell", _duplicate_column, FormatError, r"line 2, column 7 and line 2, column 8"
    ),
    Case(
        "gct",
        "duplicate_cell",
        _gct_two_samples_one_name,
        FormatError,
        r"'Counts' is repeated \(header column 3 and",
    ),
    # --- a declared shape the body does not have
    Case("gct", "declared_shape", _gct_dimensions, FormatError, r"the dimension line says 56203 rows"),
    # --- 10x Matrix Market triplets (the matrix unless the case names another file of the folder)
    *_value_cases("tenx_mtx", r"entry 1 \(row 1, column 1\)")[:3],  # negative, NaN, inf
    Case("tenx_mtx", "text", _set("12x"), InvalidValueError, r"line 4: the value '12x' is not a number"),
    Case("tenx_mtx", "missing", _set(""), FormatError, r"line 4 has 2 fields, not 3"),
    Case("tenx_mtx", "fewer_fields", _line(4, "1 1"), FormatError, r"line 4 has 2 fields, not 3"),
    Case("tenx_mtx", "more_fields", _line(4, "1 1 110 7"), FormatError, r"line 4 has 4 fields, not 3"),
    Case("tenx_mtx", "outside_shape", _line(4, "6 1 110"), FormatError, r"outside the shape .*Line 4: Row index"),
    Case("tenx_mtx", "outside_shape_column", _line(4, "1 6 110"), FormatError, r"outside the shape .*Line 4: Col"),
    Case("tenx_mtx", "outside_shape_zero", _line(4, "0 1 110"), FormatError, r"outside the shape .*Line 4"),
    Case("tenx_mtx", "negative_index", _line(4, "-1 1 110"), FormatError, r"line 4: the row and column must be"),
    Case("tenx_mtx", "nnz_more_declared", _line(3, "5 5 9"), FormatError, r"fewer entries than .* \(8 of 9\)"),
    Case("tenx_mtx", "nnz_fewer_declared", _line(3, "5 5 7"), FormatError, r"more entries than .* \(7\): line 11"),
    Case("tenx_mtx", "header_wider", _line(3, "6 5 8"), FormatError, r"the matrix is 6 x 5 but .* 5 features"),
    Case("tenx_mtx", "size_line", _line(3, "5 5 8x"), FormatError, r"line 3 must be the size line"),
    Case(
        "tenx_mtx",
        "header_narrower",
        _drop_line(5),
        FormatError,
        r"5 x 5 but .*features.tsv.gz has 4 features",
        "features",
        named="matrix",
    ),
    Case(
        "tenx_mtx",
        "duplicate_cell",
        _copy_line(1, 2),
        FormatError,
        r"'AAAGTAGCACAGTCGC-1' is repeated \(line 1 and line 2\)",
        "barcodes",
    ),
    Case("tenx_mtx", "empty_barcode", _line(2, ""), FormatError, r"line 2 holds no barcode", "barcodes"),
    Case(
        "tenx_mtx",
        "ragged_features",
        _line(2, "ENSG00000237613\tFAM138A"),
        FormatError,
        r"line 2 has 2 tab-separated columns, line 1 has 3",
        "features",
    ),
    Case(
        "tenx_mtx",
        "repeated_entry",
        _copy_line(4, 6),
        FormatError,
        r"entry 3 \(line 6\) repeats entry 1 \(line 4\): row 1, column 1 is given twice",
    ),
    Case(
        "bustools",
        "repeated_entry",
        _copy_line(5, 6),
        FormatError,
        r"entry 2 \(line 6\) repeats entry 1 \(line 5\): row 6, column 16 is given twice",
    ),
    Case("bustools", "negative", _set("-5"), InvalidValueError, r"entry 1 \(row 6, column 16\)"),
    Case("bustools", "text", _set("x"), InvalidValueError, r"line 5: the value 'x' is not a number"),
    Case("bustools", "more_fields", _more, FormatError, r"line 5 has 4 fields, not 3"),
    Case("bustools", "outside_shape", _line(5, "279 16 1"), FormatError, r"outside the shape .*Line 5"),
    Case(
        "bustools", "duplicate_cell", _copy_line(1, 2), FormatError, r"repeated \(line 1 and line 2\)", "barcodes"
    ),
]

VALUE_AND_LAYOUT_PROBLEMS = (
    "negative", "nan", "inf", "text", "missing", "fewer_fields", "more_fields", "header_wider", "header_narrower",
)  # fmt: skip
#: What every format is checked for (a format's own problems, such as 10x shapes, come on top).
PROBLEMS = (*VALUE_AND_LAYOUT_PROBLEMS, "duplicate_cell")

NOT_ERRORS = {
    # One cell per file, named after the file (or the header's second field): no id can repeat inside it.
    **{
        (key, "duplicate_cell"): "one cell per file"
        for key in ("cell_table", "cell_table_header", "star", "rsem", "kallisto", "salmon")
    },
    # Headerless htseq-count output: its count columns are named <file>_1, <file>_2..., never by the file.
    ("htseq", "duplicate_cell"): "cells are named from the file name, not by the file",
    # The long layout names a cell on every line by design; a repeated (gene, cell) pair is a repeated gene
    # and follows duplicate_genes= (summed by default, refused with duplicate_genes='error').
    ("umi_tools", "duplicate_cell"): "cell ids repeat on every line of the long layout by design",
    # Headerless formats (htseq-count, STAR, per-cell tables without a header) have no header to mismatch;
    # a body row of another width is the fewer_fields / more_fields case.
    **{
        (key, problem): "no header line"
        for key in ("cell_table", "htseq", "star")
        for problem in ("header_wider", "header_narrower")
    },
    # The same file as wide_table; only the duplicate cell differs (rows are cells in this orientation).
    **{("wide_table_cells_by_genes", problem): "covered by wide_table" for problem in VALUE_AND_LAYOUT_PROBLEMS},
    # Matrix Market value syntax is the same for bustools and 10x: covered by the tenx_mtx cases. A decimal
    # value such as 19.0 or 1.5 under an 'integer' header is read, not refused, on purpose (read as written, as
    # scipy does; tests/test_mtx_chunks.py relies on it). A coordinate given twice is refused (repeated_entry):
    # scipy and anndata would add the two values up, but no tool writes one twice.
    **{
        ("bustools", problem): "same Matrix Market parser as tenx_mtx"
        for problem in ("nan", "inf", "missing", "fewer_fields", "header_wider", "header_narrower")
    },
}

# --- names the platform cannot read back (it reads cellID_rawCounts.tsv and genes_rawCounts.tsv with
# pandas.read_csv(sep="\t")): a gene name or cell id made blank, NA, quoted, a number that reads back otherwise,
# or padded with blanks, in every format, where the format keeps its names.


@dataclass(frozen=True)
class Slot:
    """Where a real file keeps one gene name or cell id, and how the messages name that place."""

    where: str  # a regex for the place
    line: int = 0  # 1-based line of the name (0: the name is the file's or the folder's name)
    column: int = 0  # its 0-based field on that line
    target: str | None = None  # 10x: the file of the folder that holds it
    file: str | None = None  # the file name that holds the name ({} is the name)
    folder: bool = False  # the folder name is the name
    sep: str | None = None  # the field separator, when not the format's (10x barcodes and features)
    blank: str | None = None  # a regex for the place when a blank name is refused by its own check


def _at(line: int, column: int, value: str, sep: str | None) -> Edit:
    def edit(lines: list[str], real: Real) -> list[str]:
        fields = lines[line - 1].split(sep or real.sep)
        fields[column] = value
        lines[line - 1] = (sep or real.sep).join(fields)
        return lines

    return edit


def _same(lines: list[str], real: Real) -> list[str]:
    return lines


_L10 = Slot(r"\bline 10\b", 10, 0)
SLOTS: dict[tuple[str, str], Slot] = {
    ("cell_table", "gene"): _L10,
    ("cell_table", "cell"): Slot(r"the file name", file="{}.tsv"),
    ("cell_table_header", "gene"): Slot(r"\bline 5\b", 5, 0),
    ("cell_table_header", "cell"): Slot(r"line 1 \(the header\), column 2", 1, 1),
    ("wide_table", "gene"): _L10,
    ("wide_table", "cell"): Slot(r"header column 4\b", 1, 3),
    ("wide_table_cells_by_genes", "gene"): Slot(r"header column 4\b", 1, 3),
    ("wide_table_cells_by_genes", "cell"): _L10,
    ("htseq", "gene"): _L10,
    ("htseq", "cell"): Slot(r"the file or folder name", file="{}.tsv"),
    ("featurecounts", "gene"): _L10,
    ("featurecounts", "cell"): Slot(r"line 2, column 8\b", 2, 7),
    ("star", "gene"): _L10,
    ("star", "cell"): Slot(r"the file or folder name", file="{}ReadsPerGene.out.tab"),
    ("rsem", "gene"): _L10,
    ("rsem", "cell"): Slot(r"the file or folder name", file="{}.genes.results.gz"),
    ("kallisto", "gene"): _L10,
    ("kallisto", "cell"): Slot(r"the file or folder name", folder=True),
    ("salmon", "gene"): _L10,
    ("salmon", "cell"): Slot(r"the file or folder name", folder=True),
    ("umi_tools", "gene"): _L10,
    ("umi_tools", "cell"): Slot(r"\bline 10\b", 10, 1),
    ("umi_tools_wide", "gene"): _L10,
    ("umi_tools_wide", "cell"): Slot(r"header column 2\b", 1, 1),
    ("dropseq", "gene"): _L10,
    ("dropseq", "cell"): Slot(r"header column 4\b", 4, 3),
    ("gct", "gene"): _L10,
    ("gct", "cell"): Slot(r"header column 3\b", 3, 2),
    ("tenx_mtx", "gene"): Slot(r"\bline 2\b", 2, 0, target="features", sep="\t"),
    ("tenx_mtx", "cell"): Slot(r"\bline 2\b", 2, 0, target="barcodes", sep="\t"),
    ("bustools", "gene"): Slot(r"\bline 2\b", 2, 0, target="genes", sep="\t"),
    ("bustools", "cell"): Slot(r"\bline 2\b", 2, 0, target="barcodes", sep="\t"),
}
#: Each name problem: the name put in the slot and what the message says about it.
NAME_VALUES = {
    "blank": ("   ", r"empty|blank|has no name|holds no barcode"),
    "na": ("NA", r"would be read back as a missing value \(NaN\)"),
    "quote": ('AB"C', r"holds a double quote"),
    "number": ("01", r"would be read back by the platform \(pandas.read_csv\) as the number 1 where"),
    "padded": (" PADDED ", ""),  # no error: stripped, and said so
}
NAME_PROBLEMS = tuple(f"{axis}_{problem}" for axis in ("gene", "cell") for problem in NAME_VALUES)
PROBLEMS = (*PROBLEMS, *NAME_PROBLEMS)


def _name_case(key: str, axis: str, problem: str) -> Case:
    slot = SLOTS[key, axis]
    value, message = NAME_VALUES[problem]
    where = slot.blank if problem == "blank" and slot.blank else slot.where
    edit = _at(slot.line, slot.column, value, slot.sep) if slot.line else _same
    return Case(
        key,
        f"{axis}_{problem}",
        edit,
        FormatError,
        rf"{where}.*({message})" if message else where,
        target=slot.target,
        file=slot.file.format(value) if slot.file else None,
        folder=value if slot.folder else None,
    )


NOT_ERRORS |= {
    # Headerless htseq-count tables with several count columns name their cells <file stem>_1, <file stem>_2:
    # a blank, NA or numeric stem still makes ordinary names; only a forbidden character survives the suffix.
    **{
        ("htseq", f"cell_{problem}"): "cells are named <file stem>_1, <file stem>_2"
        for problem in ("blank", "na", "number", "padded")
    },
    # A single value column with a blank header is the file's only sample: the file name names it.
    ("gct", "cell_blank"): "a blank sample header: the file name names the cell",
    ("cell_table_header", "cell_blank"): "a blank second header field: the file name names the cell",
    # 'gene<TAB>01': whether a first line with a number in its second field is a header naming a cell or a
    # data line is header detection's call (a count of 1 for a gene 'gene', today); the name is not read as one.
    ("cell_table_header", "cell_number"): "a number in the header's second field: header detection decides",
    # the same for a GCT's only sample: a header whose last field is a number is no header to the table reader
    ("gct", "cell_number"): "a number as the header's last field: header detection decides",
}
#: Padded names stripped where the header line is split, before names are checked: the name is stripped
#: (what matters: it joins its unpadded self), but without a warning.
STRIPPED_SILENTLY = {("cell_table_header", "cell_padded"), ("featurecounts", "cell_padded")}
_NAME_CASES = [
    _name_case(key, axis, problem)
    for key, axis in SLOTS
    for problem in NAME_VALUES
    if (key, f"{axis}_{problem}") not in NOT_ERRORS
]
CASES += [c for c in _NAME_CASES if not c.problem.endswith("_padded")]
#: The padded names: read, stripped, and said so.
STRIPPED = [c for c in _NAME_CASES if c.problem.endswith("_padded")]


def _write_case(realdata: Path, tmp_path: Path, case: Case) -> Path:
    """The real file (or folder) with the case's edit, under tmp_path; returns the file that holds the problem."""
    real = REAL[case.key]
    source = realdata / real.path
    folder = tmp_path / (case.folder or case.key)
    folder.mkdir()
    files = sorted(source.iterdir()) if source.is_dir() else [source]
    target = case.target or real.target or source.name
    edited = None
    for path in files:
        if target not in path.name:
            shutil.copyfile(path, folder / path.name)
            continue
        raw = path.read_bytes()
        compressed = raw[:2] == b"\x1f\x8b"
        lines = (gzip.decompress(raw) if compressed else raw).decode().split("\n")
        text = "\n".join(case.edit(lines, real)).encode()
        edited = folder / (case.file or path.name)
        edited.write_bytes(gzip.compress(text) if compressed else text)
    assert edited is not None, f"no file of {source} matches {target!r}"
    return edited


def _main_file(folder: Path, real: Real) -> Path:
    if real.format == "tenx_mtx":
        return next(folder.glob("*matrix.mtx*"))
    if real.format == "bustools":
        return next(folder.glob("*.mtx"))
    return next(folder.iterdir())


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.key}-{c.problem}")
def test_bad_value_is_a_typed_error_naming_file_and_place(realdata, tmp_path, case):
    real = REAL[case.key]
    edited = _write_case(realdata, tmp_path, case)
    with pytest.raises(GseioError) as info:
        gseio.read(_main_file(edited.parent, real), format=real.format, **real.options)
    error = info.value
    assert type(error) is case.error, f"{type(error).__name__}: {error}"
    named = edited if case.named is None else next(edited.parent.glob(f"*{case.named}*"))
    assert error.path == str(named), str(error)
    assert str(named) in str(error)
    assert edited.name in str(error)
    assert re.search(case.where, str(error)), str(error)


@pytest.mark.parametrize("key", sorted(REAL))
def test_the_real_files_read_cleanly(realdata, key):
    """The unedited files are valid: each error above comes from the injected problem alone."""
    real = REAL[key]
    source = realdata / real.path
    path = _main_file(source, real) if source.is_dir() else source
    adata = gseio.read(path, format=real.format, **real.options)
    assert adata.n_obs > 0
    assert adata.n_vars > 0


def test_every_format_meets_every_problem():
    """Each (format, problem) pair is a case above or an argued exception: none is skipped silently."""
    cases = [*CASES, *STRIPPED, *H5_CASES]
    covered = {(c.key, c.problem) for c in cases}
    assert not covered & set(NOT_ERRORS), covered & set(NOT_ERRORS)
    expected = [(key, p) for key in REAL for p in PROBLEMS] + [(key, p) for key in H5_REAL for p in NAME_PROBLEMS]
    missing = [pair for pair in expected if pair not in covered and pair not in NOT_ERRORS]
    assert not missing
    assert len(covered) == len(cases)


@pytest.mark.parametrize("case", STRIPPED, ids=lambda c: f"{c.key}-{c.problem}")
def test_a_padded_name_is_stripped_and_said_so(realdata, tmp_path, case):
    """' PADDED ' is read as 'PADDED' (so it joins 'PADDED' of other files), with a warning naming the file."""
    real = REAL[case.key]
    edited = _write_case(realdata, tmp_path, case)
    if (case.key, case.problem) in STRIPPED_SILENTLY:
        adata = gseio.read(_main_file(edited.parent, real), format=real.format, **real.options)
    else:
        with pytest.warns(GseioWarning, match="stripped of leading or trailing whitespace") as record:
            adata = gseio.read(_main_file(edited.parent, real), format=real.format, **real.options)
        assert any(str(edited) in str(w.message) for w in record)
    names = list(adata.var_names if case.problem.startswith("gene") else adata.obs["cell"])
    assert "PADDED" in names
    assert " PADDED " not in names


#: HDF5 files: the names sit in string datasets, at an entry.
H5_REAL = {
    "tenx_h5": ("10x_v3/scanpy/3.0.0/filtered_feature_bc_matrix.h5", "tenx_h5"),
    "h5ad": ("h5ad/zellkonverter/example_anndata.h5ad", "h5ad"),
    "loom": ("loom/htseq/yeast_RNASeq_excerpt_withbarcodes.loom", "loom"),
    "kallisto_h5": ("kallisto/sleuth_small_test_data/kallisto/abundance.h5", "kallisto"),
}
#: (key, axis) -> the dataset and the place the messages name (None: the folder name is the name).
H5_SLOTS = {
    ("tenx_h5", "gene"): ("matrix/features/id", r"entry 2 of /matrix/features/id"),
    ("tenx_h5", "cell"): ("matrix/barcodes", r"\bbarcode 2\b"),
    ("h5ad", "gene"): ("var/_index", r"entry 2 of the /var index"),
    ("h5ad", "cell"): ("obs/_index", r"entry 2 of the /obs index"),
    ("loom", "gene"): ("row_attrs/id", r"entry 2 of /row_attrs/id"),
    ("loom", "cell"): ("col_attrs/_index", r"entry 2 of /col_attrs/_index"),
    ("kallisto_h5", "gene"): ("aux/ids", r"\bentry 2\b"),
    ("kallisto_h5", "cell"): (None, r"the file or folder name"),
}
H5_CASES = [
    Case(key, f"{axis}_{problem}", _same, FormatError, rf"{where}.*({NAME_VALUES[problem][1]})")
    for (key, axis), (_, where) in H5_SLOTS.items()
    for problem in NAME_VALUES
]


def _write_h5_case(realdata: Path, tmp_path: Path, case: Case) -> Path:
    """A copy of the HDF5 file with the case's name in its slot (or as its folder's name)."""
    h5py = pytest.importorskip("h5py")
    path, _ = H5_REAL[case.key]
    axis, problem = case.problem.split("_")
    dataset, _ = H5_SLOTS[case.key, axis]
    value = NAME_VALUES[problem][0]
    folder = tmp_path / (value if dataset is None else case.key)
    folder.mkdir()
    copy = folder / Path(path).name
    shutil.copyfile(realdata / path, copy)
    if dataset is not None:
        with h5py.File(copy, "r+") as f:
            node = f[dataset]
            node[1] = value.encode() if node.dtype.kind == "S" else value
    return copy


@pytest.mark.parametrize("case", H5_CASES, ids=lambda c: f"{c.key}-{c.problem}")
def test_a_bad_name_in_an_hdf5_file(realdata, tmp_path, case):
    path = _write_h5_case(realdata, tmp_path, case)
    fmt = H5_REAL[case.key][1]
    if case.problem.endswith("_padded"):
        with pytest.warns(GseioWarning, match="stripped of leading or trailing whitespace") as record:
            adata = gseio.read(path, format=fmt)
        assert any(str(path) in str(w.message) for w in record)
        names = list(adata.var_names if case.problem.startswith("gene") else adata.obs["cell"])
        assert "PADDED" in names
        assert " PADDED " not in names
        return
    with pytest.raises(FormatError) as info:
        gseio.read(path, format=fmt)
    assert info.value.path == str(path)
    assert re.search(case.where, str(info.value)), str(info.value)


@pytest.mark.parametrize("edit", [_header_wider, _header_narrower], ids=["wider", "narrower"])
def test_a_table_whose_header_lost_or_gained_a_field_is_still_detected(realdata, tmp_path, edit):
    """Detection hands a table with a broken header to its reader, so the error says what is wrong."""
    case = Case("wide_table", "header", edit, FormatError, "")
    edited = _write_case(realdata, tmp_path, case)
    assert gseio.detect_format(edited) == "wide_table"
    with pytest.raises(FormatError, match=r"the header has \d+ columns but line 2 has 7") as info:
        gseio.read_gse_dir(edited.parent)
    assert info.value.path == str(edited)


def test_a_repeated_barcode_in_a_10x_h5_file(realdata, tmp_path):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "filtered_feature_bc_matrix.h5"
    shutil.copyfile(realdata / "10x_v3/scanpy/3.0.0/filtered_feature_bc_matrix.h5", path)
    with h5py.File(path, "r+") as f:
        barcodes = f["matrix/barcodes"]
        barcodes[1] = barcodes[0]
    with pytest.raises(FormatError, match=r"group /matrix, barcode 1 and group /matrix, barcode 2") as info:
        gseio.read(path, format="tenx_h5")
    assert info.value.path == str(path)


# h5ad and loom: a repeated obs name / CellID is no error. AnnData itself allows non-unique obs_names (it warns
# and offers obs_names_make_unique), and concatenated AnnData files written without index_unique= hold them; the
# matrix rows are positional, so nothing is misread: gseio suffixes the names with a GseioWarning and keeps the
# originals in obs["cell"], as for cells of different files.


def test_a_repeated_entry_in_a_10x_h5_file(realdata, tmp_path):
    """A barcode that lists one feature twice (its second index made a copy of its first) is refused."""
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "filtered_feature_bc_matrix.h5"
    shutil.copyfile(realdata / "10x_v3/scanpy/3.0.0/filtered_feature_bc_matrix.h5", path)
    with h5py.File(path, "r+") as f:
        indptr, indices = f["matrix/indptr"][:], f["matrix/indices"]
        barcode = next(k for k in range(indptr.size - 1) if indptr[k + 1] - indptr[k] >= 2)
        feature = int(indices[indptr[barcode]])
        indices[indptr[barcode] + 1] = feature
    expected = rf"group /matrix: barcode {barcode + 1} lists feature {feature + 1} twice"
    with pytest.raises(FormatError, match=expected) as info:
        gseio.read(path, format="tenx_h5")
    assert info.value.path == str(path)
