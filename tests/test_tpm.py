"""gseio.pp.tpm: the platform's TPM recipe, sparse, in memory and backed."""

from __future__ import annotations

import importlib

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import sparse

import gseio
from gseio.errors import GseioError, GseioWarning, InvalidValueError
from gseio.pp import PROTOCOLS, GeneLengthError, TPMError, UnknownProtocolError, resolve_protocol, tpm

tpm_module = importlib.import_module("gseio.pp.tpm")  # gseio.pp.tpm is the function


def _adata(counts, names=None, **var) -> ad.AnnData:
    counts = np.asarray(counts, dtype=np.float32)
    names = names or [f"G{j}" for j in range(counts.shape[1])]
    return ad.AnnData(X=sparse.csr_matrix(counts), var=pd.DataFrame(var, index=names))


def _dense_reference(counts: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
    w = counts / lengths if lengths is not None else counts.astype(float)
    sums = w.sum(axis=1, keepdims=True)
    return np.divide(1e6 * w, sums, out=np.zeros_like(w), where=sums > 0)


# --- the platform's recipe, worked by hand ------------------------------------------------------

PLATFORM_TABLE = pd.DataFrame(
    {
        "Gene_ID": ["ENSG00000000001", "ENSG00000000002", "ENSG00000000099"],
        "Gene_name": ["A", "B", "C"],
        "Gene_length": [1000, 2000, 4000],
    }
)
NAMES = ["ENSG00000000001.4", "ENSG00000000002.1", "LOC3", "LOC4", "ERCC-00002"]
SYMBOLS = ["A", "B", "C", "D", "ERCC-00002"]
COUNTS = [[10, 20, 40, 2, 100], [0, 0, 0, 0, 5], [3, 0, 0, 1, 0]]


def test_platform_recipe_by_hand():
    adata = _adata(COUNTS, NAMES, gene_symbols=SYMBOLS)
    tpm(adata, protocol="Smart-seq2", lengths=PLATFORM_TABLE)
    # lengths: ENSG..1 -> 1000 and ENSG..2 -> 2000 by ID (versions ignored), LOC3 -> 4000 by its symbol C,
    # LOC4 (symbol D) unknown -> median(1000, 2000, 4000) = 2000; ERCC-00002 dropped.
    # cell 1: w = 10/1000, 20/2000, 40/4000, 2/2000 = 0.01, 0.01, 0.01, 0.001; sum 0.031
    #         TPM = 0.01/0.031*1e6 = 322580.6451612903 (three times), 0.001/0.031*1e6 = 32258.06451612903
    # cell 2: only spike-in counts -> all zero
    # cell 3: w = 3/1000, 1/2000 = 0.003, 0.0005; sum 0.0035 -> 857142.857142857, 142857.14285714287
    expected = [
        [322580.6451612903, 322580.6451612903, 322580.6451612903, 32258.06451612903, 0],
        [0, 0, 0, 0, 0],
        [857142.857142857, 0, 0, 142857.14285714287, 0],
    ]
    result = adata.layers["tpm"]
    assert sparse.isspmatrix_csr(result)
    assert result.dtype == np.float64
    assert result.shape == adata.shape
    np.testing.assert_allclose(result.toarray(), expected, rtol=1e-12)
    assert (result.data != 0).all()  # no stored zeros: spike-in column and empty cell hold nothing
    info = adata.uns["gseio_tpm"]
    assert info["protocol"] == "Smart-seq2"
    assert info["protocol_resolved"] == "Smart-seq2"
    assert info["length_normalised"]
    assert info["length_source"] == "argument"
    assert info["n_genes_length_missing"] == 1
    assert info["missing_length"] == "median"
    assert info["missing_length_fill"] == 2000.0
    assert info["n_genes_length_by_symbol"] == 1
    assert info["n_spike_ins_excluded"] == 1
    assert info["n_cells_all_zero"] == 1
    assert info["length_checksum"].startswith("blake2b:")


def test_umi_protocol_by_hand():
    adata = _adata(COUNTS, NAMES)
    tpm(adata, protocol="10x chromium")
    # cell 1: 10, 20, 40, 2 of 72 -> 138888.88..., 277777.77..., 555555.55..., 27777.77...; cell 3: 3/4, 1/4
    expected = [[1e7 / 72, 2e7 / 72, 4e7 / 72, 2e6 / 72, 0], [0] * 5, [750000, 0, 0, 250000, 0]]
    np.testing.assert_allclose(adata.layers["tpm"].toarray(), expected, rtol=1e-12)
    info = adata.uns["gseio_tpm"]
    assert not info["length_normalised"]
    assert info["length_source"] == "none"
    assert info["length_checksum"] == ""


# --- properties -----------------------------------------------------------------------------------

counts_st = st.tuples(st.integers(1, 8), st.integers(1, 10)).flatmap(
    lambda shape: arrays(np.int64, shape, elements=st.integers(0, 1000) | st.just(0))
)


def _lengths_for(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(1, 1e5, size=n)


@settings(max_examples=60, deadline=None)
@given(counts=counts_st, seed=st.integers(0, 2**16), full=st.booleans())
def test_rows_sum_to_a_million_and_match_dense_reference(counts, seed, full):
    lengths = _lengths_for(counts.shape[1], seed) if full else None
    adata = _adata(counts, length=lengths if full else np.ones(counts.shape[1]))
    tpm(adata, protocol="full-length" if full else "UMI")
    result = adata.layers["tpm"].toarray()
    assert np.isfinite(result).all()
    sums = result.sum(axis=1)
    nonzero = counts.sum(axis=1) > 0
    np.testing.assert_allclose(sums[nonzero], 1e6, rtol=1e-6)
    assert (sums[~nonzero] == 0).all()
    np.testing.assert_allclose(result, _dense_reference(counts, lengths), rtol=1e-10, atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(counts=counts_st, seed=st.integers(0, 2**16), data=st.data())
def test_invariant_to_scaling_a_cell_and_permuting_genes(counts, seed, data):
    lengths = _lengths_for(counts.shape[1], seed)
    names = [f"G{j}" for j in range(counts.shape[1])]
    base = _adata(counts, names, length=lengths)
    tpm(base, protocol="Smart-seq2")
    expected = base.layers["tpm"].toarray()

    factors = np.array(data.draw(st.lists(st.integers(1, 50), min_size=len(counts), max_size=len(counts))))
    scaled = _adata(counts * factors[:, None], names, length=lengths)
    tpm(scaled, protocol="Smart-seq2")
    np.testing.assert_allclose(scaled.layers["tpm"].toarray(), expected, rtol=1e-10, atol=1e-6)

    perm = np.array(data.draw(st.permutations(range(counts.shape[1]))))
    permuted = _adata(counts[:, perm], [names[j] for j in perm])
    tpm(permuted, protocol="Smart-seq2", lengths=pd.Series(lengths, index=names))  # looked up by name
    np.testing.assert_allclose(permuted.layers["tpm"].toarray(), expected[:, perm], rtol=1e-10, atol=1e-6)


@settings(max_examples=30, deadline=None)
@given(counts=counts_st, seed=st.integers(0, 2**16), block=st.integers(1, 25))
def test_block_size_does_not_change_a_bit(counts, seed, block):
    lengths = _lengths_for(counts.shape[1], seed)
    whole = _adata(counts, length=lengths)
    tpm(whole, protocol="Smart-seq2")
    blocked = _adata(counts, length=lengths)
    original = tpm_module.BLOCK_NNZ
    tpm_module.BLOCK_NNZ = block  # not monkeypatch: hypothesis reuses function-scoped fixtures
    try:
        tpm(blocked, protocol="Smart-seq2")
    finally:
        tpm_module.BLOCK_NNZ = original
    _assert_same_csr(blocked.layers["tpm"], whole.layers["tpm"])


def _assert_same_csr(a, b) -> None:
    assert a.shape == b.shape
    np.testing.assert_array_equal(a.indptr, b.indptr)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.data, b.data)  # exactly, not approximately


# --- spike-ins, empty cells, missing lengths ------------------------------------------------------


def test_spike_ins_are_zero_and_out_of_the_sums():
    counts = np.array([[5, 5, 90], [0, 0, 7], [1, 3, 0]])
    adata = _adata(counts, ["A", "B", "ERCC-00096"])
    tpm(adata, protocol="Drop-seq")
    result = adata.layers["tpm"].toarray()
    assert (result[:, 2] == 0).all()
    np.testing.assert_allclose(result[[0, 2]].sum(axis=1), 1e6)
    assert result[1].tolist() == [0, 0, 0]
    assert not np.isnan(result).any()
    kept = _adata(counts, ["A", "B", "ERCC-00096"])
    tpm(kept, protocol="Drop-seq", spike_in_prefix=None)
    assert kept.layers["tpm"][1, 2] == pytest.approx(1e6)
    assert kept.uns["gseio_tpm"]["n_spike_ins_excluded"] == 0


def test_zero_cells_stay_zero_and_are_counted():
    adata = _adata([[0, 0], [1, 1], [0, 0]], length=[100.0, 200.0])
    tpm(adata, protocol="Smart-seq")
    result = adata.layers["tpm"]
    assert np.isfinite(result.data).all()
    assert result.getnnz(axis=1).tolist() == [0, 2, 0]
    assert adata.uns["gseio_tpm"]["n_cells_all_zero"] == 2


@pytest.mark.parametrize("policy", ["median", "drop", "error"])
def test_missing_length_policies(policy):
    # lengths 100, NaN, 300, 0 (not positive: unknown); counts 1 each
    adata = _adata([[1, 1, 1, 1]], length=[100.0, np.nan, 300.0, 0.0])
    if policy == "error":
        with pytest.raises(GeneLengthError, match=r"2 genes have no known length.*G1, G3"):
            tpm(adata, protocol="smart-seq2", missing_length=policy)
        return
    tpm(adata, protocol="smart-seq2", missing_length=policy)
    result = adata.layers["tpm"].toarray()[0]
    if policy == "median":  # median(100, 300) = 200: w = 1/100, 1/200, 1/300, 1/200
        w = np.array([1 / 100, 1 / 200, 1 / 300, 1 / 200])
    else:  # dropped genes: TPM 0 and out of the sum
        w = np.array([1 / 100, 0, 1 / 300, 0])
    np.testing.assert_allclose(result, 1e6 * w / w.sum(), rtol=1e-12)
    info = adata.uns["gseio_tpm"]
    assert info["n_genes_length_missing"] == 2
    assert info["missing_length"] == policy
    assert info["length_source"] == "var['length']"


def test_full_length_without_any_length_says_where_lengths_come_from():
    adata = _adata([[1, 2]])
    with pytest.raises(GeneLengthError, match=r"lengths=.*featureCounts, RSEM, kallisto and salmon") as info:
        tpm(adata, protocol="C1 Fluidigm")
    assert isinstance(info.value, GseioError)
    assert isinstance(info.value, ValueError)
    with pytest.raises(GeneLengthError, match="none of the 2 genes has a known length"):
        tpm(adata, protocol="C1 Fluidigm", lengths=pd.Series({"X": 10.0}))


def test_length_column_and_ensembl_versions():
    adata = _adata([[1, 3]], ["ENSG00000000001.7", "ENSG00000000002"], length=[1.0, 1.0])
    adata.var["effective_length"] = [100.0, 300.0]
    tpm(adata, protocol="smart-seq2", length_column="effective_length")
    np.testing.assert_allclose(adata.layers["tpm"].toarray(), [[5e5, 5e5]])
    assert adata.uns["gseio_tpm"]["length_source"] == "var['effective_length']"
    table = pd.DataFrame({"length": [100.0, 300.0]}, index=["ENSG00000000001.3", "ENSG00000000002.9"])
    tpm(adata, protocol="smart-seq2", lengths=table, layer="by_table")  # the argument wins over var
    np.testing.assert_allclose(adata.layers["by_table"].toarray(), [[5e5, 5e5]])


def test_lengths_given_for_a_umi_protocol_are_ignored_with_a_warning():
    adata = _adata([[1, 3]], length=[1.0, 100.0])
    with pytest.warns(GseioWarning, match="lengths are ignored"):
        tpm(adata, protocol="inDrops", lengths=pd.Series({"G0": 1.0, "G1": 100.0}))
    np.testing.assert_allclose(adata.layers["tpm"].toarray(), [[2.5e5, 7.5e5]])


def test_checksum_follows_the_lengths_used():
    def checksum(lengths):
        adata = _adata([[1, 1]], length=lengths)
        tpm(adata, protocol="Smart-seq2")
        return adata.uns["gseio_tpm"]["length_checksum"]

    assert checksum([10.0, 20.0]) == checksum([10.0, 20.0]) != checksum([10.0, 21.0])


# --- protocols ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("smart-seq2", "Smart-seq2"),
        ("Smart-seq2", "Smart-seq2"),
        ("SMARTseq2", "Smart-seq2"),
        ("smart_seq_2", "Smart-seq2"),
        ("Smart-seq", "Smart-seq"),
        ("SMART-seq v4", "Smart-seq"),
        ("Smart-seq3", "Smart-seq3"),
        ("C1 Fluidigm", "Fluidigm C1"),
        ("Fluidigm C1", "Fluidigm C1"),
        ("Quartz-seq", "Quartz-seq"),
        ("MATQ-seq", "MATQ-seq"),
        ("10x", "10x Chromium"),
        ("10x Chromium", "10x Chromium"),
        ("10X chromium", "10x Chromium"),
        ("10x chromium", "10x Chromium"),
        ("10x Genomics Chromium Single Cell 3' v3", "10x Chromium"),
        ("10x 5\u2032", "10x Chromium"),
        ("Chromium", "10x Chromium"),
        ("drop-seq", "Drop-seq"),
        ("microwell-seq", "Microwell-seq"),
        ("inDrops", "inDrops"),
        ("CEL-seq", "CEL-seq"),
        ("CEL-seq2", "CEL-seq2"),
        ("MARS-seq", "MARS-seq"),
        ("msSCRB-seq", "mcSCRB-seq"),
        ("mcSCRB-seq", "mcSCRB-seq"),
        ("SCRB-seq", "SCRB-seq"),
        ("Seq-Well", "Seq-Well"),
        ("SPLiT-seq", "SPLiT-seq"),
        ("sci-RNA-seq3", "sci-RNA-seq"),
    ],
)
def test_protocol_names_match_loosely(name, canonical):
    assert resolve_protocol(name) is PROTOCOLS[canonical]


def test_full_length_flags():
    full = {name for name, p in PROTOCOLS.items() if p.full_length}
    assert {"Smart-seq", "Smart-seq2", "Smart-seq3", "Fluidigm C1", "Quartz-seq", "MATQ-seq"} <= full
    tag = {"10x Chromium", "Drop-seq", "inDrops", "CEL-seq", "CEL-seq2", "MARS-seq", "SCRB-seq", "mcSCRB-seq"}
    assert not tag & full
    assert tag <= set(PROTOCOLS)


@pytest.mark.parametrize("name", ["bulk-ish", "", "seq", "Smart-seq9"])
def test_unknown_protocol_is_a_typed_error_listing_the_known_ones(name):
    with pytest.raises(UnknownProtocolError, match=r"Smart-seq2.*10x Chromium") as info:
        tpm(_adata([[1]]), protocol=name)
    assert isinstance(info.value, GseioError)
    assert isinstance(info.value, ValueError)


# --- where the result goes ------------------------------------------------------------------------


def test_layer_none_replaces_x_and_copy_leaves_the_input_alone():
    adata = _adata([[1, 3]])
    new = tpm(adata, protocol="10x", copy=True)
    assert "tpm" not in adata.layers
    assert "gseio_tpm" not in adata.uns
    np.testing.assert_allclose(new.layers["tpm"].toarray(), [[2.5e5, 7.5e5]])
    assert tpm(adata, protocol="10x", layer=None) is None
    np.testing.assert_allclose(adata.X.toarray(), [[2.5e5, 7.5e5]])
    assert adata.uns["gseio_tpm"]["layer"] == "X"


def test_dense_and_sparse_array_inputs():
    dense = ad.AnnData(X=np.array([[1.0, 3.0]]), var=pd.DataFrame(index=["A", "B"]))
    tpm(dense, protocol="10x")
    assert sparse.isspmatrix_csr(dense.layers["tpm"])
    arr = ad.AnnData(X=sparse.csr_array(np.array([[1.0, 3.0]])), var=pd.DataFrame(index=["A", "B"]))
    tpm(arr, protocol="10x")
    assert isinstance(arr.layers["tpm"], sparse.csr_array)


def test_negative_or_nan_counts_are_refused():
    with pytest.raises(InvalidValueError, match="negative"):
        tpm(_adata([[1, -1]]), protocol="10x")
    with pytest.raises(InvalidValueError, match="NaN"):
        tpm(_adata([[1, np.nan]]), protocol="10x")
    with pytest.raises(TPMError, match="missing_length"):
        tpm(_adata([[1, 1]]), protocol="10x", missing_length="mean")


def test_tpm_layer_survives_write_and_read(tmp_path):
    adata = _adata(COUNTS, NAMES, gene_symbols=SYMBOLS)
    tpm(adata, protocol="Smart-seq2", lengths=PLATFORM_TABLE)
    adata.write_h5ad(tmp_path / "a.h5ad")
    back = ad.read_h5ad(tmp_path / "a.h5ad")
    _assert_same_csr(back.layers["tpm"], adata.layers["tpm"])
    assert back.uns["gseio_tpm"]["length_checksum"] == adata.uns["gseio_tpm"]["length_checksum"]
    assert bool(back.uns["gseio_tpm"]["length_normalised"]) is True


# --- backed ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["Smart-seq2", "10x"])
def test_backed_equals_in_memory_exactly(tmp_path, monkeypatch, protocol):
    rng = np.random.default_rng(3)
    counts = sparse.random(
        200, 60, density=0.2, format="csr", random_state=4, data_rvs=lambda n: rng.integers(1, 99, n)
    )
    counts.data[counts.indptr[5] : counts.indptr[6]] = 0  # an empty cell
    counts.eliminate_zeros()
    names = [f"G{j}" for j in range(55)] + [f"ERCC-{j:05d}" for j in range(5)]
    lengths = pd.Series(rng.uniform(100, 9000, 60), index=names).drop(["G3", "G7"])  # two get the median
    path = tmp_path / "b.h5ad"
    ad.AnnData(X=counts.astype(np.float32), var=pd.DataFrame(index=names)).write_h5ad(path)
    memory = ad.read_h5ad(path)
    tpm(memory, protocol=protocol, lengths=lengths if protocol == "Smart-seq2" else None)

    monkeypatch.setattr(tpm_module, "BLOCK_NNZ", 97)  # many blocks, none aligned with anything
    backed = ad.read_h5ad(path, backed="r")
    tpm(backed, protocol=protocol, lengths=lengths if protocol == "Smart-seq2" else None)
    assert backed.isbacked
    assert backed.file.is_open
    _assert_same_csr(backed.layers["tpm"][:], memory.layers["tpm"])
    assert backed.uns["gseio_tpm"] == memory.uns["gseio_tpm"]
    backed.file.close()

    with h5py.File(path, "r") as f:
        group = f["layers/tpm"]
        assert group.attrs["encoding-type"] == "csr_matrix"
        assert group.attrs["encoding-version"] == "0.1.0"
        assert tuple(group.attrs["shape"]) == (200, 60)
        assert set(group) == {"data", "indices", "indptr"}
        assert ".tpm.partial" not in f["layers"]
    _assert_same_csr(ad.read_h5ad(path).layers["tpm"], memory.layers["tpm"])
    again = ad.read_h5ad(path, backed="r")
    _assert_same_csr(sparse.csr_matrix(again.layers["tpm"][:]), memory.layers["tpm"])
    assert again.uns["gseio_tpm"]["protocol"] == protocol
    tpm(again, protocol=protocol, lengths=lengths if protocol == "Smart-seq2" else None)  # overwrites
    _assert_same_csr(again.layers["tpm"][:], memory.layers["tpm"])
    again.file.close()


def test_backed_build_from_generated_per_cell_files(demo_dir, tmp_path):
    backed = gseio.read_gse_dir(demo_dir, backed=tmp_path / "demo.h5ad")
    lengths = pd.Series(np.random.default_rng(0).uniform(300, 5000, backed.n_vars), index=backed.var_names).iloc[
        ::2
    ]  # half the genes: the rest get the median
    memory = backed.to_memory()
    tpm(memory, protocol="Smart-seq2", lengths=lengths)
    tpm(backed, protocol="Smart-seq2", lengths=lengths)
    _assert_same_csr(backed.layers["tpm"][:], memory.layers["tpm"])
    assert memory.uns["gseio_tpm"]["n_spike_ins_excluded"] == 20
    backed.file.close()


def test_backed_refuses_copy_and_replacing_x(tmp_path):
    path = tmp_path / "c.h5ad"
    _adata([[1, 2]]).write_h5ad(path)
    backed = ad.read_h5ad(path, backed="r")
    for options in ({"copy": True}, {"layer": None}):
        with pytest.raises(TPMError, match="backed"):
            tpm(backed, protocol="10x", **options)
    backed.file.close()


def test_par_y_copies_and_symbol_names_find_their_lengths():
    par = _adata([[1, 1, 2]], ["ENSG00000002586.20_PAR_Y", "ENSG00000002586.20", "ENSG00000000005.6"])
    tpm(par, protocol="Smart-seq2", lengths=pd.Series({"ENSG00000002586.19": 500.0, "ENSG00000000005": 1000.0}))
    np.testing.assert_allclose(par.layers["tpm"].toarray(), [[1e6 / 3] * 3])  # 1/500, 1/500, 2/1000
    symbols = _adata([[1, 1]], ["A", "C"])  # names are symbols: the platform table's Gene_name column
    tpm(symbols, protocol="Smart-seq2", lengths=PLATFORM_TABLE)
    np.testing.assert_allclose(symbols.layers["tpm"].toarray(), [[8e5, 2e5]])  # 1/1000 : 1/4000
    assert symbols.uns["gseio_tpm"]["n_genes_length_missing"] == 0


def test_real_featurecounts_lengths_from_var(realdata):
    adata = gseio.read(realdata / "featurecounts" / "GenomicsAotearoa" / "yeast_counts_all_chr.txt")
    tpm(adata, protocol="Smart-seq2")
    assert adata.uns["gseio_tpm"]["length_source"] == "var['length']"
    assert adata.uns["gseio_tpm"]["n_genes_length_missing"] == 0
    reference = _dense_reference(adata.X.toarray(), adata.var["length"].to_numpy())
    np.testing.assert_allclose(adata.layers["tpm"].toarray(), reference, rtol=1e-10, atol=1e-9)
