"""The build report: every input accounted for, duplicates caught, outputs checked against the inputs."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import gseio
from gseio.cli import main
from gseio.errors import DuplicateInputError, GseioWarning
from gseio.export.template import RAW_FILES, RAW_MATRIX, TPM_FILES
from gseio.report import ConservationError, build_report, check_outputs


def _cell(path: Path, values: dict[str, float], *, gz: bool = True) -> Path:
    text = "".join(f"{g}\t{v:g}\n" for g, v in values.items()).encode()
    path.write_bytes(gzip.compress(text, mtime=0) if gz else text)
    return path


@pytest.fixture
def series(tmp_path: Path) -> Path:
    folder = tmp_path / "GSE9_RAW"
    folder.mkdir()
    _cell(folder / "GSM1_a.txt.gz", {"G1": 3, "G2": 0, "G3": 5})
    _cell(folder / "GSM2_b.txt.gz", {"G1": 1, "G2": 7, "G4": 2})
    (folder / "README.txt").write_text("about this series\n")
    (folder / "GSM3_c.txt").write_text("G1\t1\nG2\tNaN\n")
    return folder


def test_report_lists_every_file_with_its_checksum_and_status(series):
    adata = gseio.read_gse_dir(series, on_error="skip")
    report = build_report(adata)
    files = {f["path"]: f for f in report["files"]}
    assert set(files) == {"GSM1_a.txt.gz", "GSM2_b.txt.gz", "README.txt", "GSM3_c.txt"}
    for name in ("GSM1_a.txt.gz", "GSM2_b.txt.gz"):
        data = (series / name).read_bytes()
        assert files[name]["status"] == "read"
        assert files[name]["sha256"] == hashlib.sha256(data).hexdigest()
        assert files[name]["bytes"] == len(data)
        assert files[name]["format"] == "cell_table"
    assert files["GSM3_c.txt"]["status"] == "skipped"
    assert files["GSM3_c.txt"]["reason"].startswith("InvalidValueError")
    assert files["GSM3_c.txt"]["sha256"] == hashlib.sha256((series / "GSM3_c.txt").read_bytes()).hexdigest()
    assert files["README.txt"]["status"] == "ignored"
    assert files["README.txt"]["reason"] == "documentation"
    units = {u["unit"]: u for u in report["units"]}
    assert units["GSM1_a.txt.gz"]["cells"] == 1
    assert units["GSM1_a.txt.gz"]["nnz"] == 2
    assert units["GSM1_a.txt.gz"]["total_counts"] == 8
    assert units["GSM2_b.txt.gz"]["total_counts"] == 10
    totals = report["totals"]
    assert (totals["read"], totals["skipped"], totals["ignored"]) == (2, 1, 1)
    assert totals["cells"] == adata.n_obs == 2
    assert totals["total_counts"] == float(adata.X.sum()) == 18
    assert totals["genes"] == adata.n_vars == 4


def test_the_same_file_twice_is_refused_or_skipped(series):
    (series / "GSM3_c.txt").unlink()
    (series / "GSM4_copy.txt.gz").write_bytes((series / "GSM1_a.txt.gz").read_bytes())
    with pytest.raises(DuplicateInputError, match=r"GSM4_copy.txt.gz: holds the same bytes as GSM1_a.txt.gz"):
        gseio.read_gse_dir(series)
    adata = gseio.read_gse_dir(series, on_error="skip")
    assert adata.n_obs == 2
    files = {f["path"]: f for f in build_report(adata)["files"]}
    assert files["GSM4_copy.txt.gz"]["status"] == "skipped"
    assert files["GSM4_copy.txt.gz"]["reason"].startswith("DuplicateInputError: holds the same bytes as GSM1_a")


def test_identical_empty_cells_are_not_duplicates(tmp_path):
    for i in range(3):  # empty wells: every count zero, the same bytes
        _cell(tmp_path / f"GSM{i}_empty.txt.gz", {"G1": 0, "G2": 0})
    _cell(tmp_path / "GSM9_full.txt.gz", {"G1": 4, "G2": 0})
    adata = gseio.read_gse_dir(tmp_path)
    assert adata.n_obs == 4


def test_warnings_go_into_the_report(tmp_path):
    (tmp_path / "GSM1_x.txt").write_text("gene\tc1\nA\t1\n")
    (tmp_path / "GSM1_y.txt").write_text("gene\tc1\nA\t2\n")  # same sample, same cell id
    with pytest.warns(GseioWarning, match="suffixes") as caught:
        adata = gseio.read_gse_dir(tmp_path)
    report = build_report(adata)
    assert report["warnings"] == [str(w.message) for w in caught]


def test_check_outputs_rereads_the_files(series, tmp_path):
    adata = gseio.read_gse_dir(series, on_error="skip")
    report = build_report(adata)
    gseio.write_h5ad(adata, tmp_path / "x.h5ad")
    gseio.write_template(adata, tmp_path / "t")
    section = check_outputs(report, h5ad=tmp_path / "x.h5ad", template=tmp_path / "t")
    assert section["ok"]
    assert section["found"]["x.h5ad"]["total_counts"] == 18
    assert section["found"][RAW_MATRIX]["cells"] == 2

    matrix = tmp_path / "t" / RAW_MATRIX
    lines = matrix.read_text().splitlines(keepends=True)
    row, col, value = lines[-1].split()
    matrix.write_text("".join(lines[:-1]) + f"{row} {col} {int(value) + 1}\n")  # one count more
    with pytest.raises(ConservationError, match=r"sums to 19\.0; the units read sum to 18\.0"):
        check_outputs(report, template=tmp_path / "t")
    matrix.write_text("".join(lines[:-1]))  # an entry lost: the size line no longer matches
    with pytest.raises(ConservationError, match="declares 5 entries but holds 4"):
        check_outputs(report, template=tmp_path / "t")


def test_backed_build_has_the_report(series, tmp_path):
    adata = gseio.read_gse_dir(series, on_error="skip", backed=tmp_path / "b.h5ad")
    report = build_report(adata)
    assert report["totals"]["cells"] == 2
    assert check_outputs(report, h5ad=tmp_path / "b.h5ad")["ok"]


def test_cli_writes_a_checked_report_and_keeps_foreign_files(series, tmp_path):
    runner = CliRunner()
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.md").write_text("my notes\n")
    (out / "downloaded_data").mkdir()
    (out / "downloaded_data" / "GSE9_RAW.tar").write_bytes(b"tar bytes")
    first = runner.invoke(main, ["build", str(series), "-o", str(out), "--on-error", "skip", "--tpm",
                                 "--protocol", "10x chromium"])  # fmt: skip
    assert first.exit_code == 0, first.output
    assert "checked     the outputs, re-read, hold all 2 cells and 18 counts read" in first.output
    report = json.loads((out / "build_report.json").read_text())
    assert report["conservation"]["ok"]
    assert report["conservation"]["expected"] == {"cells": 2, "total_counts": 18.0}
    assert {o["file"] for o in report["outputs"]} >= {*RAW_FILES, *TPM_FILES}
    assert (out / "notes.md").read_text() == "my notes\n"

    second = runner.invoke(main, ["build", str(series), "-o", str(out), "--on-error", "skip", "--overwrite"])
    assert second.exit_code == 0, second.output
    names = {p.name for p in out.iterdir()}
    assert not names & set(TPM_FILES)  # the previous build's TPM files do not outlive it
    assert {"notes.md", "downloaded_data", "build_report.json", *RAW_FILES} <= names
    assert (out / "downloaded_data" / "GSE9_RAW.tar").read_bytes() == b"tar bytes"
    assert not [p for p in tmp_path.iterdir() if "staging" in p.name]


def test_cli_refuses_to_publish_outputs_that_lost_counts(series, tmp_path, monkeypatch):
    import gseio._cli_support as support

    write = support.write_outputs

    def lossy(adata, staging, *args, **kwargs):
        staged = write(adata, staging, *args, **kwargs)
        matrix = staging / RAW_MATRIX
        lines = matrix.read_text().splitlines(keepends=True)
        matrix.write_text("".join(lines[:-1]) + lines[-1].rsplit(" ", 1)[0] + " 1000\n")
        return staged

    monkeypatch.setattr(support, "write_outputs", lossy)
    monkeypatch.setattr("gseio.cli.write_outputs", lossy)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["build", str(series), "-o", str(out), "--on-error", "skip"])
    assert result.exit_code == 1
    assert "do not hold what was read" in result.output
    assert not any((out / name).exists() for name in RAW_FILES)
    failed = json.loads((out / "build_report.failed.json").read_text())
    assert failed["conservation"]["ok"] is False
    assert np.isclose(failed["conservation"]["expected"]["total_counts"], 18)


def test_one_matrix_in_two_formats_is_caught_by_its_content(realdata, tmp_path):
    import shutil

    source = realdata / "10x_v3/scanpy/3.0.0"
    shutil.copytree(source / "filtered_feature_bc_matrix", tmp_path / "GSM1_mtx")
    (tmp_path / "GSM1_h5").mkdir()
    shutil.copy(source / "filtered_feature_bc_matrix.h5", tmp_path / "GSM1_h5" / "filtered_feature_bc_matrix.h5")
    with pytest.raises(
        DuplicateInputError, match=r"same cells and counts as GSM1_h5/filtered_feature_bc_matrix\.h5"
    ):
        gseio.read_gse_dir(tmp_path)
    adata = gseio.read_gse_dir(tmp_path, on_error="skip")
    assert adata.obs_names.is_unique
    assert build_report(adata)["totals"]["skipped"] == 3  # the triplet's three files


def test_tiny_cells_with_equal_counts_are_not_taken_for_duplicates(tmp_path):
    # two low-depth cells named alike by their header, with the same three reads: chance, not a copy
    for i in range(2):
        (tmp_path / f"GSM{i}_c.txt").write_text(f"gene\tcell\nG1\t1\nG2\t2\nG3\t{'0' * i}0\nG4\t0\n")
    assert gseio.read_gse_dir(tmp_path).n_obs == 2
    many = "".join(f"G{j}\t{j % 7 + 1}\n" for j in range(40))  # 40 equal counts: a copy
    (tmp_path / "GSM7_c.txt").write_text("gene\tcopy\n" + many)
    (tmp_path / "GSM8_c.txt").write_text("gene\tcopy\n" + many.replace("\n", "\r\n"))
    with pytest.raises(DuplicateInputError, match=r"same cells and counts as GSM7_c\.txt"):
        gseio.read_gse_dir(tmp_path)


def _built(series: Path, tmp_path: Path, genes: list[str] | None = None):
    """The series read, optionally renamed, written as h5ad and template; its report."""
    adata = gseio.read_gse_dir(series, on_error="skip")
    if genes is not None:
        adata.var_names = genes
    gseio.write_h5ad(adata, tmp_path / "x.h5ad")
    gseio.write_template(adata, tmp_path / "t")
    return adata, build_report(adata)


@pytest.mark.parametrize(
    ("genes", "problem"),
    [
        (["G1", "NA", "G3", "G4"], r"1 genes of genes_rawCounts\.tsv as missing values \(e\.g\. line 3, 'NA"),
        (["G1", "null", "G3", "G4"], "as missing values"),
        (["NaN", "G2", "G3", "G4"], r"as missing values \(e\.g\. line 2, 'NaN'\)"),
        (["1", "01", "2", "3"], r"the platform reads line 3 of genes_rawCounts\.tsv, '01', as '1'"),  # int64
        (["1", "1.50", "2", "3"], r"reads line 2 of genes_rawCounts\.tsv, '1', as '1\.0'"),  # float64
    ],
)
def test_a_name_the_platform_reads_back_changed_fails_the_check(series, tmp_path, genes, problem):
    import pandas as pd

    adata, report = _built(series, tmp_path, genes)
    column = pd.read_csv(tmp_path / "t" / "genes_rawCounts.tsv", sep="\t")["genes"]  # the platform's own read
    assert [str(v) for v in column] != genes  # so the platform would not get the names back
    with pytest.raises(ConservationError, match=problem):
        check_outputs(report, template=tmp_path / "t", cells=adata.obs_names, genes=adata.var_names)


def test_names_the_platform_reads_back_as_written_pass(series, tmp_path):
    genes = ["NA12878", "1", "2", "3"]  # numbers read back as numbers print as the same text
    adata, report = _built(series, tmp_path, genes)
    section = check_outputs(report, h5ad=tmp_path / "x.h5ad", template=tmp_path / "t", cells=adata.obs_names,
                            genes=adata.var_names)  # fmt: skip
    assert section["ok"]
    assert section["found"][RAW_MATRIX]["gene_names"] == 4


def test_tables_that_disagree_with_the_matrix_fail_the_check(series, tmp_path):
    adata, report = _built(series, tmp_path)
    genes_file = tmp_path / "t" / "genes_rawCounts.tsv"
    text = genes_file.read_text()
    genes_file.write_text(text.replace("G1\n", "GX\n"))  # a name changed
    changed = r"line 2 of genes_rawCounts\.tsv is 'GX', the matrix's genes 1 is 'G1'"
    with pytest.raises(ConservationError, match=changed):
        check_outputs(report, template=tmp_path / "t", genes=adata.var_names)
    with pytest.raises(ConservationError, match="line 2 of genes_rawCounts"):  # the h5ad's names stand in
        check_outputs(report, h5ad=tmp_path / "x.h5ad", template=tmp_path / "t")
    genes_file.write_text(text + "G9\n")  # a gene too many
    with pytest.raises(ConservationError, match=r"genes_rawCounts\.tsv lists 5 genes for a matrix of 4 columns"):
        check_outputs(report, template=tmp_path / "t")
    genes_file.write_text(text)
    cells_file = tmp_path / "t" / "cellID_rawCounts.tsv"
    cells_file.write_text("cellID\n\nb\n")  # an empty cell id: pandas skips the line
    with pytest.raises(ConservationError, match=r"reads 1 cell ids from cellID_rawCounts\.tsv, which has 2"):
        check_outputs(report, template=tmp_path / "t")


def test_cli_refuses_to_publish_a_gene_table_the_platform_misreads(series, tmp_path, monkeypatch):
    import gseio._cli_support as support

    write = support.write_outputs

    def misnamed(adata, staging, *args, **kwargs):
        staged = write(adata, staging, *args, **kwargs)
        genes_file = staging / "genes_rawCounts.tsv"
        genes_file.write_text(genes_file.read_text().replace("G2\n", "NA\n"))
        return staged

    monkeypatch.setattr("gseio.cli.write_outputs", misnamed)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["build", str(series), "-o", str(out), "--on-error", "skip"])
    assert result.exit_code == 1
    assert result.output.startswith(f"error: {out / 'GSE9_RAW.h5ad'}: the outputs do not hold what was read: ")
    assert "reads 1 genes of genes_rawCounts.tsv as missing values (e.g. line 3, 'NA')" in result.output
    assert "staging" not in result.output
    # nothing published; the parsed units stay for the next run
    assert sorted(p.name for p in out.iterdir()) == [".gseio-cache", "build_report.failed.json"]
    failed = json.loads((out / "build_report.failed.json").read_text())
    assert failed["conservation"]["ok"] is False
    assert any("'NA'" in problem for problem in failed["conservation"]["problems"])
