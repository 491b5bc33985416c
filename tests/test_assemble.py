from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gseio
from conftest import parse_two_column
from gseio.errors import GseioWarning, InputError, InvalidValueError, UnknownFormatError


def _write_cell(path: Path, counts: dict[str, float], *, header: str | None = None) -> Path:
    lines = ([header] if header else []) + [f"{g}\t{v:g}" for g, v in counts.items()]
    text = "\n".join(lines) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def _dense_by_name(adata) -> dict[tuple[str, str], float]:
    """(cell, gene) -> value for every non-zero: independent of row/column order."""
    coo = adata.X.tocoo()
    return {
        (adata.obs_names[i], adata.var_names[j]): float(v)
        for i, j, v in zip(coo.row, coo.col, coo.data, strict=True)
        if v != 0
    }


def test_counts_land_on_the_right_gene_when_gene_lists_differ(tmp_path):
    # the seed case: the hand-written loop took the first file's gene list and mislabelled the rest
    cells = {
        "GSM1_a.txt.gz": {"TP53": 5, "GAPDH": 100, "ACTB": 0, "XIST": 2},
        "GSM2_b.txt.gz": {"ACTB": 7, "TP53": 1, "MYC": 3},  # other order, one new, two missing
        "GSM3_c.txt": {"GAPDH": 9, "ERCC-00002": 4, "TP53": 0, "XIST": 1},
    }
    for name, counts in cells.items():
        _write_cell(tmp_path / name, counts)
    adata = gseio.read_gse_dir(tmp_path)
    expected = {
        (Path(name).name.split("_", 1)[1].split(".")[0], g): float(v)
        for name, counts in cells.items()
        for g, v in counts.items()
        if v
    }
    assert _dense_by_name(adata) == expected
    assert adata.var_names.tolist() == ["TP53", "GAPDH", "ACTB", "XIST", "MYC", "ERCC-00002"]  # first seen
    assert adata.obs_names.tolist() == ["a", "b", "c"]
    assert adata.obs["sample"].tolist() == ["GSM1", "GSM2", "GSM3"]
    assert adata.obs["source_file"].tolist() == sorted(cells)
    assert adata.X.has_sorted_indices
    assert adata.X.format == "csr"


def _concat_reference(files: list[Path]) -> ad.AnnData:
    import warnings

    with warnings.catch_warnings():  # concat warns when cell names repeat; we compare by position
        warnings.filterwarnings("ignore", "Observation names are not unique", UserWarning)
        return ad.concat([gseio.read_cell_table(f) for f in files], join="outer", fill_value=0)


def _assert_same_as_concat(adata: ad.AnnData, reference: ad.AnnData) -> None:
    assert adata.obs["cell"].tolist() == reference.obs["cell"].tolist()
    assert set(adata.var_names) == set(reference.var_names)
    aligned = adata[:, reference.var_names]
    np.testing.assert_array_equal(aligned.X.toarray(), reference.X.toarray())
    for column in reference.obs.columns.difference(["sample", "source_file", "cell", "gene_list"]):  # per build
        np.testing.assert_array_equal(adata.obs[column].to_numpy(float), reference.obs[column].to_numpy(float))


def test_equals_anndata_concat_on_real_htseq_tables(realdata, tmp_path):
    names = ["bamfile_no_qualities.tsv", "yeast_RNASeq_excerpt_withNH_counts.tsv", "multiqc/counts.tsv"]
    files = []
    for i, name in enumerate(names):  # real files under distinct GEO-style names (copied to tmp only)
        files.append(tmp_path / f"GSM{100 + i}_{Path(name).name}")
        shutil.copyfile(realdata / "htseq" / name, files[-1])
    # three organisms, one labelled by Ensembl ID: joined as written, as concat does
    adata = gseio.read_gse_dir(tmp_path, gene_ids="exact")
    reference = _concat_reference(sorted(files))
    _assert_same_as_concat(adata, reference)
    # and against an independent parse of the real files
    for cell_file in sorted(files):
        counts = {g: v for g, v in parse_two_column(cell_file).items() if not g.startswith("__") and v}
        row = adata[adata.obs["source_file"] == cell_file.name]
        got = {g: float(v) for g, v in zip(row.var_names, row.X.toarray()[0], strict=True) if v}
        assert got == counts
    assert adata.obs["htseq_not_aligned"].tolist() == [0.0, 1336.0, 3766951.0]
    sorted_build = gseio.read_gse_dir(tmp_path, gene_order="sorted", gene_ids="exact")
    assert sorted_build.var_names.tolist() == reference.var_names.tolist()  # concat's own order


gene_pool = [f"G{i}" for i in range(40)] + ["ERCC-00002", "__no_feature"]


@st.composite
def _series(draw):
    n_files = draw(st.integers(1, 6))
    files = []
    for _ in range(n_files):
        genes = draw(st.lists(st.sampled_from(gene_pool), min_size=1, max_size=25, unique=True))
        values = draw(
            st.lists(
                st.one_of(st.integers(0, 3), st.integers(0, 10**7), st.floats(0, 1e4, allow_nan=False, width=32)),
                min_size=len(genes),
                max_size=len(genes),
            )
        )
        header = draw(st.sampled_from([None, "gene\tcount", "gene_id\tshared_name"]))
        files.append((dict(zip(genes, values, strict=True)), header))
    return files


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(series=_series())
def test_equals_anndata_concat_on_generated_series(tmp_path_factory, series):
    folder = tmp_path_factory.mktemp("series")
    files = []
    for i, (counts, header) in enumerate(series):
        if all(g.startswith("__") for g in counts):
            counts = {**counts, "G0": 1}
        files.append(_write_cell(folder / f"GSM{i}_cell{i}.txt{'.gz' if i % 2 else ''}", counts, header=header))
    adata = gseio.read_gse_dir(folder)  # GseioWarning is an error in the test config: none expected
    _assert_same_as_concat(adata, _concat_reference(sorted(files)))
    assert adata.obs_names.is_unique


def test_colliding_cell_ids_are_prefixed_with_the_sample(tmp_path):
    _write_cell(tmp_path / "GSM1_x.txt", {"A": 1}, header="gene\tLM2_G15")
    _write_cell(tmp_path / "GSM2_y.txt", {"A": 2}, header="gene\tLM2_G15")
    _write_cell(tmp_path / "GSM3_z.txt", {"A": 3}, header="gene\tother")
    adata = gseio.read_gse_dir(tmp_path)
    assert adata.obs_names.tolist() == ["GSM1_LM2_G15", "GSM2_LM2_G15", "GSM3_other"]
    assert adata.obs["cell"].tolist() == ["LM2_G15", "LM2_G15", "other"]


def test_names_still_colliding_get_suffixes_and_a_warning(tmp_path):
    _write_cell(tmp_path / "GSM1_x.txt", {"A": 1}, header="gene\tc1")
    _write_cell(tmp_path / "GSM1_y.txt", {"A": 2}, header="gene\tc1")  # same sample, same cell id
    with pytest.warns(GseioWarning, match="suffixes"):
        adata = gseio.read_gse_dir(tmp_path)
    assert adata.obs_names.is_unique
    assert adata.obs["source_file"].tolist() == ["GSM1_x.txt", "GSM1_y.txt"]


def test_same_file_name_in_two_folders_are_two_samples(tmp_path):
    _write_cell(tmp_path / "a" / "cell.txt", {"A": 1})
    _write_cell(tmp_path / "b" / "cell.txt", {"A": 2})
    _write_cell(tmp_path / "GSM7_plate" / "w1.txt", {"A": 3})
    adata = gseio.read_gse_dir(tmp_path)
    assert adata.obs["sample"].tolist() == ["GSM7", "a/cell", "b/cell"]  # a GSM in a folder name counts
    assert adata.obs_names.is_unique


def test_provenance_ignored_files_and_pattern(tmp_path):
    _write_cell(tmp_path / "GSM1_a.counts.txt.gz", {"A": 1, "B": 2})
    _write_cell(tmp_path / "GSM2_b.counts.txt.gz", {"A": 3})
    (tmp_path / "filelist.txt").write_text("#Archive\n")
    (tmp_path / "README.md").write_text("hello\n")
    (tmp_path / "GSE1_series_matrix.txt.gz").write_bytes(gzip.compress(b'!Series_title\t"x"\n'))
    adata = gseio.read_gse_dir(tmp_path)
    prov = adata.uns["gseio"]
    assert prov["version"] == gseio.__version__
    assert prov["input"] == str(tmp_path.resolve())
    assert prov["files"].tolist() == ["GSM1_a.counts.txt.gz", "GSM2_b.counts.txt.gz"]
    assert dict(zip(prov["ignored_files"], prov["ignored_reasons"], strict=True)) == {
        "GSE1_series_matrix.txt.gz": "GEO metadata (series matrix, SOFT or MINiML), not counts",
        "README.md": "documentation",
        "filelist.txt": "file list or checksums",
    }
    assert prov["options"]["on_error"] == "raise"
    only_b = gseio.read_gse_dir(tmp_path, pattern="*_b.*")
    assert only_b.obs_names.tolist() == ["b"]
    assert "GSM1_a.counts.txt.gz" in only_b.uns["gseio"]["ignored_files"].tolist()


def test_bad_file_raises_by_default_and_is_recorded_when_skipped(tmp_path):
    _write_cell(tmp_path / "GSM1_a.txt", {"A": 1, "B": 2})
    (tmp_path / "GSM2_b.txt").write_text("A\t1\nB\t-4\n")
    whole = gzip.compress("".join(f"G{i}\t{i * 7919 % 1000}\n" for i in range(2000)).encode())
    (tmp_path / "GSM3_c.txt.gz").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "GSM4_d.txt").write_bytes(b"")
    (tmp_path / "GSM5_e.mtx").write_text("%%MatrixMarket matrix coordinate integer general\n1 1 1\n1 1 1\n")
    _write_cell(tmp_path / "GSM6_f.txt", {"B": 5})
    with pytest.raises(InvalidValueError, match=r"GSM2_b\.txt"):
        gseio.read_gse_dir(tmp_path)
    adata = gseio.read_gse_dir(tmp_path, on_error="skip")
    assert adata.obs_names.tolist() == ["a", "f"]
    assert _dense_by_name(adata) == {("a", "A"): 1, ("a", "B"): 2, ("f", "B"): 5}
    reasons = dict(zip(adata.uns["gseio"]["skipped_files"], adata.uns["gseio"]["skipped_reasons"], strict=True))
    assert set(reasons) == {"GSM2_b.txt", "GSM3_c.txt.gz", "GSM4_d.txt", "GSM5_e.mtx"}
    assert reasons["GSM2_b.txt"].startswith("InvalidValueError")
    assert reasons["GSM3_c.txt.gz"].startswith("CorruptFileError")
    assert reasons["GSM4_d.txt"].startswith("EmptyFileError")
    assert reasons["GSM5_e.mtx"].startswith("UnknownFormatError")
    assert adata.uns["gseio"]["files"].tolist() == ["GSM1_a.txt", "GSM6_f.txt"]


def test_unknown_format_error_lists_known_formats(tmp_path):
    (tmp_path / "x.txt").write_text("%%MatrixMarket matrix\n")
    with pytest.raises(UnknownFormatError, match=r"known formats: .*cell_table"):
        gseio.read_gse_dir(tmp_path)


def test_empty_or_missing_folder(tmp_path):
    with pytest.raises(InputError, match="no count files found"):
        gseio.read_gse_dir(tmp_path)
    (tmp_path / "README.txt").write_text("x")
    with pytest.raises(InputError, match=r"ignored README.txt \(documentation\)"):
        gseio.read_gse_dir(tmp_path)
    with pytest.raises(InputError, match="neither a folder nor a tar archive"):
        gseio.read_gse_dir(tmp_path / "README.txt")


def test_all_files_skipped_is_an_error(tmp_path):
    (tmp_path / "a.txt").write_text("A\tx\n")
    with pytest.raises(InputError, match="every one of the 1 inputs was skipped"):
        gseio.read_gse_dir(tmp_path, on_error="skip")


def test_demo_build_round_trips_through_h5ad(demo_dir, tmp_path):
    adata = gseio.read_gse_dir(demo_dir)
    path = gseio.write_h5ad(adata, tmp_path / "demo.h5ad")
    back = ad.read_h5ad(path)
    assert (back.X != adata.X).nnz == 0
    assert back.obs_names.tolist() == adata.obs_names.tolist()
    assert back.uns["gseio"]["files"].tolist() == adata.uns["gseio"]["files"].tolist()
    pd.testing.assert_frame_equal(back.obs, adata.obs)


def test_dtype_option(tmp_path):
    _write_cell(tmp_path / "a.txt", {"A": 1, "B": 2})
    assert gseio.read_gse_dir(tmp_path).X.dtype == np.float32
    assert gseio.read_gse_dir(tmp_path, dtype="float64").X.dtype == np.float64
    with pytest.raises(ValueError, match="dtype must be one of"):
        gseio.read_gse_dir(tmp_path, dtype="int8")


def test_same_result_for_any_number_of_threads(demo_dir):
    one = gseio.read_gse_dir(demo_dir, n_jobs=1)
    for n_jobs in (2, 3, None, -1):
        other = gseio.read_gse_dir(demo_dir, n_jobs=n_jobs)
        assert other.obs_names.tolist() == one.obs_names.tolist()
        assert other.var_names.tolist() == one.var_names.tolist()
        assert (other.X != one.X).nnz == 0
        assert other.X.dtype == one.X.dtype


def test_first_error_in_path_order_is_raised_with_threads(tmp_path):
    for i in range(30):
        _write_cell(tmp_path / f"GSM{i:03d}_c.txt", {"A": i + 1})
    (tmp_path / "GSM010_c.txt").write_text("A\t1\nB\tbad\nC\t2\n")
    (tmp_path / "GSM020_c.txt").write_text("")
    for n_jobs in (1, 2, 4):
        with pytest.raises(InvalidValueError, match=r"GSM010_c\.txt"):
            gseio.read_gse_dir(tmp_path, n_jobs=n_jobs)


def test_single_file_readers_record_provenance(tmp_path):
    path = _write_cell(tmp_path / "GSM1_a.txt", {"A": 1})
    for adata in (gseio.read_cell_table(path), gseio.read(path), gseio.read(path, format="cell_table")):
        prov = adata.uns["gseio"]
        assert prov["input"] == str(path.resolve())
        assert prov["files"].tolist() == ["GSM1_a.txt"]
        assert prov["version"] == gseio.__version__


def test_repeated_gene_whose_counts_sum_past_the_largest_float_is_refused(tmp_path):
    (tmp_path / "GSM1_a.txt").write_text("G0\t1\nG1\t2\n")
    (tmp_path / "GSM2_b.txt").write_text("G0\t8.988465674311579e+307\nG0\t8.98846567431158e+307\n")
    for backed in (None, tmp_path / "x.h5ad"):
        with pytest.raises(InvalidValueError, match=r"GSM2_b\.txt: the counts of a gene the file repeats"):
            gseio.read_gse_dir(tmp_path, backed=backed)
    first = gseio.read_gse_dir(tmp_path, duplicate_genes="first")
    assert np.isfinite(first.X.data).all()
