"""Whether a table's first line is a header (it names columns) or data (a gene and its counts).

Per-cell tables, htseq-count outputs and wide tables come with or without a header line, and
nothing marks which. Taking a data line for a header loses a gene and names the cell after a
count: ``ENSG00000000001<TAB>NA`` once became a cell called ``NA``. The rule, in order:

1. The first field is empty (R's and pandas' corner; but ``<TAB>5`` is a count without its gene,
   reported as such) or a word that names a label column
   (``gene``, ``gene_id``, ``Geneid``, ``Symbol``, ``feature``, ``Name``, ``cell``, ``barcode``,
   ``tracking_id``...; case, blanks, dots and dashes ignored): a **header**. No gene has such
   a name, so ``gene<TAB>1`` and ``gene<TAB>NA`` are headers (of cells named ``1`` and ``NA``).
2. A value field is a word that names a value column (``count``, ``counts``, ``reads``,
   ``value``, ``umi``...): a **header**.
3. The first field is a gene id of a strong kind (:data:`~gseio.readers._labels.GENE_KINDS`:
   Ensembl, FlyBase, WormBase, yeast, RefSeq, ERCC, htseq's ``__`` counters): **data**, whatever
   follows, since no header starts with an Ensembl id. ``ENSG00000000001<TAB>abc`` is a gene
   whose count ``abc`` is not a number.
4. A value field is quoted while the body leaves its numbers unquoted (R's ``write.csv``
   quotes names, never numbers or ``NA``): a **header**, even of cells named ``"1"``.
5. A value field is a number (``12``, ``-3``, ``1.5e3``) or looks like a failed one (:func:`is_bad_number`:
   a missing or non-finite marker such as ``NA``, ``nan``, ``N/A``, ``null``, ``-``, ``inf``;
   hex ``0x10``; thousands separators ``1,000``; a decimal comma ``1,5``; a bare exponent ``1e``):
   **data**. The reader then reports the bad value on line 1, as on any other line.
6. Otherwise (every value field is a name: ``NA12878``, ``cell-1``, ``GSM123``, ``LM2_G15``):
   a **header**.

Ambiguous lines and how they are read: ``Cre<TAB>1`` (a gene symbol and a count, or a label
column named ``Cre`` and a cell named ``1``?) is data, as a number always was; a header whose
first field is no known label word and whose cell is named like a number needs one of the
words of rule 1. ``ACTB<TAB>abc`` (a symbol and a bad count, or a header naming cell ``abc``?)
is a header, since gene symbols and label words look alike; with an Ensembl id (rule 3) it is
data. The body's labels cannot settle these either: a symbol (``Cre``, ``EGFP``) sorts before
Ensembl ids as often as a label word does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ._labels import CELL_HEADERS, GENE_HEADERS, GENE_KINDS, label_kind

__all__ = ["LABEL_WORDS", "VALUE_WORDS", "is_bad_number", "is_header", "is_number"]

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
#: Missing and non-finite markers (lower case): what a spreadsheet or R writes where a count should be.
_MARKERS = frozenset(
    {"", "na", "nan", "-nan", "+nan", "n/a", "#n/a", "null", "none", "-", "--", ".", "?",
     "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity", "#div/0!", "#value!", "#num!"}
)  # fmt: skip
_FAILED_NUMBER = re.compile(
    r"^[+-]?(0x[0-9a-f]+"  # hexadecimal
    r"|\d{1,3}([,' ]\d{3})+(\.\d*)?"  # thousands separators: 1,000 1'000 1 000
    r"|\d+,\d+"  # a decimal comma: 1,5
    r"|(\d+\.?\d*|\.\d+)e[+-]?"  # an exponent without digits: 1e, 2.5E+
    r"|\d+\.\d*\.[\d.]*)$",  # two decimal points: 1.2.3
    re.IGNORECASE,
)

#: First fields that name a label column (normalised: lower case, blanks, dots and dashes as "_").
LABEL_WORDS = GENE_HEADERS | CELL_HEADERS | frozenset(
    {"gene_ids", "gene_names", "gene_symbols", "genesymbol", "gene_short_name", "gene_stable_id",
     "ensembl_gene", "ensembl_gene_ids", "ensembl_id", "entrez", "entrez_id", "entrezid", "entrez_gene_id",
     "tracking_id", "transcript", "transcripts", "transcript_id", "transcript_ids", "probe", "probe_id",
     "probes", "probeset", "probeset_id", "probe_set_id", "id_ref", "accession", "row_names", "rownames",
     "index", "feature_name", "feature_ids", "features_id", "cell_name", "cell_ids", "barcode_id",
     "samples", "sample_id", "sample_name", "geneids", "genes_id", "gene_symbol_id", "description"}
)  # fmt: skip
#: Value fields that name the value column rather than a cell.
VALUE_WORDS = frozenset(
    {"count", "counts", "value", "values", "expression", "reads", "read_count", "readcount", "raw_count",
     "raw_counts", "rawcount", "umi", "umis", "umi_count", "x", "tpm", "fpkm", "rpkm", "cpm"}
)  # fmt: skip
_SEPARATORS = re.compile(r"[\s.\-]+")


def is_number(text: str) -> bool:
    """Whether ``text`` (blanks and quotes around it ignored) is a decimal number."""
    return bool(_NUMBER.match(text.strip().strip('"')))


def is_bad_number(text: str) -> bool:
    """Whether ``text`` stands for a number but is none: ``NA``, ``inf``, ``0x10``, ``1,000``, ``1e``..."""
    value = text.strip().strip('"').strip()
    return value.lower() in _MARKERS or bool(_FAILED_NUMBER.match(value))


def _word(text: str) -> str:
    return _SEPARATORS.sub("_", text.strip().strip('"').strip().lower())


def is_header(label: str, values: Sequence[str], *, quoted: Sequence[bool] = ()) -> bool:
    """Whether a first line ``label<sep>values...`` names columns rather than holding data.

    Parameters
    ----------
    label
        The line's first field (the gene column).
    values
        The fields that would be counts if the line were data (a per-cell table's second field,
        htseq-count's last field, every field after the first of a wide table). Empty fields
        among several are ignored (a trailing delimiter); a single empty one is a missing count.
    quoted
        Which of ``values`` were quoted in the file, when quotes tell names from numbers (the
        body's numbers are unquoted); leave it empty when every field is quoted.

    Returns
    -------
    ``True`` for a header, by the rule of the module notes.
    """
    word = _word(label)
    fields = [v.strip().strip('"').strip() for v in values]
    if word == "":  # a corner, unless the line is one count without its gene (reported as such)
        return not (len(fields) == 1 and is_number(fields[0]))
    if word in LABEL_WORDS:
        return True
    if any(f and _word(f) in VALUE_WORDS for f in fields):
        return True
    if label_kind(label.strip().strip('"')) in GENE_KINDS:
        return False
    if any(quoted):
        return True
    if len(fields) > 1:
        fields = [f for f in fields if f]
    return bool(fields) and not any(is_number(f) or is_bad_number(f) for f in fields)
