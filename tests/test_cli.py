from __future__ import annotations

import gzip
import subprocess
import sys

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import gseio
from gseio.cli import main
from gseio.export.template import RAW_FILES


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_help_explains_itself(runner):
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0
    for word in ("build", "demo", "formats", "GEO"):
        assert word in result.output
    result = runner.invoke(main, ["build", "--help"])
    assert result.exit_code == 0
    for option in ("--outdir", "--on-error", "--pattern", "--quiet", "--overwrite", "Exit status"):
        assert option in result.output


def test_build_demo_writes_template_and_h5ad_with_summary(runner, demo_dir, tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(main, ["build", str(demo_dir), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == sorted([*RAW_FILES, "GSE_demo_RAW.h5ad", "build_report.json"])
    expected = gseio.read_gse_dir(demo_dir)
    h5 = ad.read_h5ad(out / "GSE_demo_RAW.h5ad")
    assert (h5.X != expected.X).nnz == 0
    assert (gseio.read_template(out).X != expected.X).nnz == 0
    assert f"cells       {expected.n_obs:,}" in result.output
    assert f"genes       {expected.n_vars:,}" in result.output
    assert f"non-zeros   {expected.X.nnz:,}" in result.output
    assert f"files read  {expected.n_obs:,} (skipped 0, ignored 2)" in result.output
    assert "ignored     filelist.txt: file list or checksums" in result.output
    assert "time " in result.output


def test_existing_outputs_are_refused_then_replaced_with_overwrite(runner, demo_dir, tmp_path):
    out = tmp_path / "out"
    assert runner.invoke(main, ["build", str(demo_dir), "-o", str(out), "-q"]).exit_code == 0
    again = runner.invoke(main, ["build", str(demo_dir), "-o", str(out), "-q"])
    assert again.exit_code == 1
    assert "exist already" in again.output
    assert "--overwrite" in again.output
    replaced = runner.invoke(main, ["build", str(demo_dir), "-o", str(out), "-q", "--overwrite", "--name", "x"])
    assert replaced.exit_code == 0
    assert replaced.output == ""  # quiet: no summary
    assert (out / "x.h5ad").exists()


def test_bad_input_fails_cleanly_and_writes_nothing(runner, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "GSM1_a.txt").write_text("A\t1\nB\t2\n")
    (src / "GSM2_b.txt.gz").write_bytes(gzip.compress(b"A\t1\nB\tNaN\n"))
    out = tmp_path / "out"
    result = runner.invoke(main, ["build", str(src), "-o", str(out)])
    assert result.exit_code == 1
    assert "GSM2_b.txt.gz" in result.output
    assert "missing or NaN" in result.output
    # no output, only the hidden cache of units parsed so far (for --resume)
    assert [p.name for p in out.iterdir()] in ([], [".gseio-cache"])

    skipped = runner.invoke(main, ["build", str(src), "-o", str(out), "--on-error", "skip"])
    assert skipped.exit_code == 0, skipped.output
    assert "skipped 1" in skipped.output
    assert "skipped     GSM2_b.txt.gz: InvalidValueError" in skipped.output
    assert gseio.read_template(out).obs_names.tolist() == ["a"]


def test_usage_errors_exit_2(runner, tmp_path):
    assert runner.invoke(main, ["build", str(tmp_path)]).exit_code == 2  # no -o
    assert runner.invoke(main, ["build", str(tmp_path / "missing"), "-o", "x"]).exit_code == 2


def test_demo_command_and_formats(runner, tmp_path):
    result = runner.invoke(main, ["demo", str(tmp_path / "d"), "--cells-per-plate", "4"])
    assert result.exit_code == 0
    assert "wrote 12 per-cell count files" in result.output
    again = runner.invoke(main, ["demo", str(tmp_path / "d")])  # an earlier demo is replaced
    assert again.exit_code == 0
    assert "wrote 144 per-cell count files" in again.output
    assert len(list((tmp_path / "d").glob("*.gz"))) == 144
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "data.txt").write_text("mine")
    refused = runner.invoke(main, ["demo", str(tmp_path / "other")])
    assert refused.exit_code == 1
    assert "not a gseio demo folder" in refused.output
    assert (tmp_path / "other" / "data.txt").read_text() == "mine"
    assert "cell_table" in runner.invoke(main, ["formats"]).output


def test_console_script_and_module_entry_points(tmp_path):
    for command in (["gseio", "--version"], [sys.executable, "-m", "gseio", "--version"]):
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        assert gseio.__version__ in done.stdout


def test_progress_bar_goes_to_stderr_only_when_asked(demo_dir, capsys):
    gseio.read_gse_dir(demo_dir, progress=True)
    err = capsys.readouterr().err
    assert "reading: 100%" in err
    assert "144/144" in err
    gseio.read_gse_dir(demo_dir)
    assert capsys.readouterr().err == ""


def test_inspect_lists_units_without_building(runner, demo_dir, tmp_path):
    import json

    result = runner.invoke(main, ["inspect", str(demo_dir)])
    assert result.exit_code == 0, result.output
    assert "144 units" in result.output
    assert "GSM5000001_P1_A01.counts.txt.gz  cell_table  GSM5000001" in result.output
    assert "ignored       filelist.txt: file list or checksums" in result.output
    as_json = json.loads(runner.invoke(main, ["inspect", str(demo_dir), "--json"]).output)
    expected = gseio.read_gse_dir(demo_dir)
    assert [u["unit"] for u in as_json["units"]] == expected.obs["source_file"].tolist()
    assert sum(u["nnz"] for u in as_json["units"]) == expected.X.nnz
    assert all(u["cells"] == 1 for u in as_json["units"])
    quick = json.loads(runner.invoke(main, ["inspect", str(demo_dir), "--json", "--no-read"]).output)
    assert "cells" not in quick["units"][0]
    assert not (tmp_path / "out").exists()


def test_build_reads_a_raw_tar_and_names_outputs_after_it(runner, demo_dir, tmp_path):
    import tarfile

    tar_path = tmp_path / "GSE_demo_RAW.tar"
    with tarfile.open(tar_path, "w") as tar:
        for path in sorted(demo_dir.iterdir()):
            tar.add(path, arcname=path.name)
    result = runner.invoke(main, ["build", str(tar_path), "-o", str(tmp_path / "out"), "-q"])
    assert result.exit_code == 0, result.output
    from_tar = ad.read_h5ad(tmp_path / "out" / "GSE_demo_RAW.h5ad")
    assert (from_tar.X != gseio.read_gse_dir(demo_dir).X).nnz == 0


def test_reader_options_come_from_the_api(runner, demo_dir, tmp_path):
    from gseio._unit import ReadOptions

    help_text = runner.invoke(main, ["build", "--help"]).output
    for field in ReadOptions.__dataclass_fields__:
        if field not in ("cache", "duplicate_genes"):
            assert "--" + field.replace("_", "-") in help_text
    bad = runner.invoke(main, ["build", str(demo_dir), "-o", str(tmp_path / "o"), "--orientation", "sideways"])
    assert bad.exit_code == 2


def test_small_memory_budget_builds_out_of_core_with_the_same_outputs(runner, demo_dir, tmp_path):
    in_memory = runner.invoke(main, ["build", str(demo_dir), "-o", str(tmp_path / "mem")])
    assert in_memory.exit_code == 0, in_memory.output
    assert "in memory" in in_memory.output
    backed = runner.invoke(main, ["build", str(demo_dir), "-o", str(tmp_path / "ooc"), "--max-memory", "100KB"])
    assert backed.exit_code == 0, backed.output
    assert "out of core" in backed.output
    for name in RAW_FILES:
        assert (tmp_path / "ooc" / name).read_bytes() == (tmp_path / "mem" / name).read_bytes()
    a = ad.read_h5ad(tmp_path / "ooc" / "GSE_demo_RAW.h5ad")
    b = ad.read_h5ad(tmp_path / "mem" / "GSE_demo_RAW.h5ad")
    assert (a.X != b.X).nnz == 0
    assert a.obs.equals(b.obs)
    assert sorted(p.name for p in (tmp_path / "ooc").iterdir()) == sorted(
        [*RAW_FILES, "GSE_demo_RAW.h5ad", "build_report.json"]
    )
    bad = runner.invoke(main, ["build", str(demo_dir), "-o", str(tmp_path / "x"), "--max-memory", "lots"])
    assert bad.exit_code == 2
    assert "not a size" in bad.output


def _demo_gtf(path, genes):
    """A GTF for the demo's genes: gene k has two overlapping exons covering 100 * (k + 1) + 50 bases."""
    lines = []
    for k, gene in enumerate(genes):
        start = 1000 * (k + 1)
        attrs = f'gene_id "{gene}"; gene_version "3"; transcript_id "T{k}"; gene_name "SYM{k}";'
        lines.append(f"chr1\ttest\texon\t{start}\t{start + 100 * (k + 1) - 1}\t.\t+\t.\t{attrs}")
        lines.append(f"chr1\ttest\texon\t{start + 50}\t{start + 100 * (k + 1) + 49}\t.\t+\t.\t{attrs}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_build_with_tpm(runner, demo_dir, tmp_path):
    from scipy import io as sio

    from gseio.export.template import TPM_FILES

    genes = gseio.read_gse_dir(demo_dir).var_names
    gtf = _demo_gtf(tmp_path / "genes.gtf", [g for g in genes if not g.startswith("ERCC-")])
    out = tmp_path / "out"
    result = runner.invoke(
        main, ["build", str(demo_dir), "-o", str(out), "--tpm", "--protocol", "Smart-seq2", "--gtf", str(gtf)]
    )
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} >= set(TPM_FILES)
    tpm = sio.mmread(out / "expressionMatrix_TPM.mtx").tocsr()
    raw = sio.mmread(out / "expressionMatrix_rawCounts.mtx").tocsr().toarray()
    keep = ~genes.str.startswith("ERCC-")
    lengths = np.array([100 * (k + 1) + 50 for k in range(int(keep.sum()))], dtype=float)
    rate = raw[:, keep] / lengths
    np.testing.assert_allclose(tpm.toarray(), rate / rate.sum(axis=1, keepdims=True) * 1e6, rtol=1e-10)
    annotation = pd.read_csv(out / "geneAnnotation.tsv", sep="\t")
    assert annotation["geneSymbol"].tolist()[:2] == ["SYM0", "SYM1"]
    assert annotation["ensemblIDVersion"].tolist()[0] == genes[0] + ".3"
    h5 = ad.read_h5ad(out / "GSE_demo_RAW.h5ad")
    assert (abs(h5.layers["tpm"][:, np.flatnonzero(keep)] - tpm) > 1e-9).nnz == 0


def test_build_with_tpm_errors(runner, demo_dir, tmp_path):
    no_protocol = runner.invoke(main, ["build", str(demo_dir), "-o", str(tmp_path / "a"), "--tpm"])
    assert no_protocol.exit_code == 2
    assert "--protocol" in no_protocol.output
    no_lengths = runner.invoke(main, ["build", str(demo_dir), "-o", str(tmp_path / "b"), "--tpm", "--protocol",
                                      "smart-seq2"])  # fmt: skip
    assert no_lengths.exit_code == 1
    assert "length" in no_lengths.output
    umi = runner.invoke(main, ["build", str(demo_dir), "-o", str(tmp_path / "c"), "--tpm", "--protocol", "10x",
                               "--max-memory", "100KB"])  # fmt: skip
    assert umi.exit_code == 0, umi.output
    assert "out of core" in umi.output
    assert (tmp_path / "c" / "expressionMatrix_TPM.mtx").is_file()


def test_gene_table_command(runner, realdata, tmp_path):
    out = tmp_path / "genes.tsv"
    gtf = realdata / "gtf" / "pytximport" / "annotation.gtf"
    result = runner.invoke(main, ["gene-table", str(gtf), "-o", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out, sep="\t")
    assert table.columns.tolist()[:3] == ["Gene_ID", "Gene_name", "Gene_length"]
    assert table["Gene_ID"].is_unique
    assert (table["Gene_length"] > 0).all()
    again = runner.invoke(main, ["gene-table", str(gtf), "-o", str(out)])
    assert again.exit_code == 1
    assert "exists already" in again.output


def test_a_folder_named_like_an_output_is_never_replaced(runner, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "GSM1_a.txt").write_text("A\t1\nB\t2\n")
    out = tmp_path / "out"
    (out / "genes_rawCounts.tsv").mkdir(parents=True)
    (out / "genes_rawCounts.tsv" / "mine.txt").write_text("mine")
    result = runner.invoke(main, ["build", str(src), "-o", str(out), "--overwrite"])
    assert result.exit_code == 1
    assert result.output == (f"error: {out}: genes_rawCounts.tsv: a folder named like an output; gseio never "
                             "replaces a folder, move it away\n")  # fmt: skip
    assert (out / "genes_rawCounts.tsv" / "mine.txt").read_text() == "mine"


def test_an_input_whose_name_cannot_name_the_h5ad_asks_for_name(runner, tmp_path):
    src = tmp_path / ".hidden_series"
    src.mkdir()
    (src / "GSM1_a.txt").write_text("A\t1\nB\t2\n")
    result = runner.invoke(main, ["build", str(src), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "'.hidden_series' cannot name the h5ad: it starts with '.', which hides the file; pass --name" in (
        result.output
    )
    named = runner.invoke(main, ["build", str(src), "-o", str(tmp_path / "out"), "--name", "series", "-q"])
    assert named.exit_code == 0, named.output
    assert (tmp_path / "out" / "series.h5ad").is_file()
