"""Every file of the shared real data is grouped and detected as exactly its own format, or set aside."""

from __future__ import annotations

import pytest

import gseio

# file (relative to realdata/) -> format of the unit it belongs to, "ignored" or "unrecognised"
EXPECTED = {
    "10x_h5_visium/scanpy/visium_1.0.0/filtered_feature_bc_matrix.h5": "tenx_h5",
    "10x_h5_visium/scanpy/visium_2.1.0/raw_probe_bc_matrix.h5": "tenx_h5",
    "10x_h5_xenium/multiqc/sample1/cell_feature_matrix.h5": "tenx_h5",
    "10x_v2/scanpy/1.2.0/filtered_gene_bc_matrices/hg19_chr21/barcodes.tsv": "tenx_mtx",
    "10x_v2/scanpy/1.2.0/filtered_gene_bc_matrices/hg19_chr21/genes.tsv": "tenx_mtx",
    "10x_v2/scanpy/1.2.0/filtered_gene_bc_matrices/hg19_chr21/matrix.mtx": "tenx_mtx",
    "10x_v2/scanpy/1.2.0/filtered_gene_bc_matrices_h5.h5": "tenx_h5",
    "10x_v2/scanpy/1.2.0/multiple_genomes.h5": "tenx_h5",
    "10x_v2/seurat/barcodes.tsv": "tenx_mtx",
    "10x_v2/seurat/genes.tsv": "tenx_mtx",
    "10x_v2/seurat/matrix.mtx": "tenx_mtx",
    "10x_v3/scanpy/3.0.0/filtered_feature_bc_matrix.h5": "tenx_h5",
    "10x_v3/scanpy/3.0.0/filtered_feature_bc_matrix/barcodes.tsv.gz": "tenx_mtx",
    "10x_v3/scanpy/3.0.0/filtered_feature_bc_matrix/features.tsv.gz": "tenx_mtx",
    "10x_v3/scanpy/3.0.0/filtered_feature_bc_matrix/matrix.mtx.gz": "tenx_mtx",
    "10x_v3/seurat/cr3.0/barcodes.tsv.gz": "tenx_mtx",
    "10x_v3/seurat/cr3.0/features.tsv.gz": "tenx_mtx",
    "10x_v3/seurat/cr3.0/matrix.mtx.gz": "tenx_mtx",
    "bustools/kb_python/lamanno/counts/spliced.barcodes.txt": "bustools",
    "bustools/kb_python/lamanno/counts/spliced.genes.txt": "bustools",
    "bustools/kb_python/lamanno/counts/spliced.mtx": "bustools",
    "dexseq_count/pasilla/treated1fb.txt": "cell_table",  # exon-bin counts, one sample: a two-column table
    "dropseq_dge/MergeSplitDge.1.digital_expression.txt.gz": "dropseq",
    "dropseq_dge/P60ENTSTNRep1P1.subset.auto.digital_expression.txt": "dropseq",
    "dropseq_dge/test_with_header.dge.txt.gz": "dropseq",
    "featurecounts/GenomicsAotearoa/yeast_counts_all_chr.txt": "featurecounts",
    "featurecounts/multiqc/SRR1067503_1_trimmed_star_aligned.bam_counts.txt.summary": "ignored",
    "featurecounts/multiqc/Test1.counts.summary": "ignored",
    "featurecounts/multiqc/multiple_files.counts.txt.summary": "ignored",
    "gct/rnaseqc/downsampled.bam.gene_reads.gct": "gct",
    "geo_10x_prefixed/GSE224438/GSM7022367_1_barcodes.tsv.gz": "tenx_mtx",
    "geo_10x_prefixed/GSE224438/GSM7022367_1_features.tsv.gz": "tenx_mtx",
    "geo_10x_prefixed/GSE224438/GSM7022367_1_matrix.mtx.gz": "tenx_mtx",
    "geo_10x_prefixed/GSE224438/GSM7022368_2-1_barcodes.tsv.gz": "tenx_mtx",
    "geo_10x_prefixed/GSE224438/GSM7022368_2-1_features.tsv.gz": "tenx_mtx",
    "geo_10x_prefixed/GSE224438/GSM7022368_2-1_matrix.mtx.gz": "tenx_mtx",
    "geo_series_matrix/SeriesMatrixIO/GSE285754_series_matrix.txt.gz": "ignored",
    "geo_soft/GEOparse/GPL20814_family.soft": "ignored",
    "geo_soft/GEOparse/GPL4133.txt": "ignored",
    "geo_soft/GEOparse/GSE105845_family.soft": "ignored",
    "geo_soft/GEOparse/GSM2795971.txt": "ignored",
    "geo_soft/GEOparse/GSM32878.txt": "ignored",
    "geo_soft/GEOparse/soft_ex_family.txt": "ignored",
    "geo_soft/GEOquery/GSM11805.txt.gz": "ignored",
    "geo_soft/gemma/GSE142485_family.soft.gz": "ignored",
    "geo_soft/gemma/GSE180363.miniml.xml": "ignored",
    "geo_soft/gemma/GSE235534_family.soft.gz": "ignored",
    "geo_soft/gemma/GSE71229_family.soft.gz": "ignored",
    "gtf/htseq/HomoSapiens.GRCh38-2020-A_subsampled.gtf": "ignored",
    "gtf/htseq/Saccharomyces_cerevisiae.SGD1.01.56.gtf.gz": "ignored",
    "gtf/pytximport/annotation.gtf": "ignored",
    "h5ad/htseq/bamfile_no_qualities.h5ad": "h5ad",
    "htseq/bamfile_no_qualities.mtx": "unrecognised",  # a dense vector without feature names
    "htseq/bamfile_no_qualities.tsv": "cell_table",
    "htseq/multiqc/counts.tsv": "cell_table",
    "htseq/multiqc/issue_2114/WTCHG_536273_229157.tsv": "htseq",
    "htseq/yeast_RNASeq_excerpt_withNH_counts.tsv": "cell_table",
    "htseq/yeast_RNASeq_excerpt_withNH_counts_additional_attributes_chromosome_info.tsv": "htseq",
    "htseq/yeast_RNASeq_excerpt_withNH_counts_twocolumns.tsv": "htseq",
    "htseq/yeast_RNASeq_excerpt_withbarcodes.tsv": "wide_table",
    "htseq/yeast_RNASeq_excerpt_withbarcodes_chromosome_info.tsv": "wide_table",
    "kallisto/pytximport/multiple/abundance_1.tsv": "kallisto",
    "kallisto/sleuth_small_test_data/kallisto/abundance.h5": "kallisto",
    "kallisto/sleuth_small_test_data/kallisto/abundance.tsv": "kallisto",
    "kallisto/sleuth_small_test_data/kallisto/run_info.json": "kallisto",
    "loom/htseq/bamfile_no_qualities.loom": "loom",
    "loom/htseq/yeast_RNASeq_excerpt_withbarcodes.loom": "loom",
    "rsem/tximportData/ERR188021/ERR188021.genes.results.gz": "rsem",
    "salmon/nf-core_test-datasets/WT_REP1/quant.genes.sf": "salmon",
    "salmon/nf-core_test-datasets/WT_REP1/quant.sf": "salmon",
    "salmon/pytximport/multiple/Sample_1.sf": "salmon",
    "salmon/pytximport/multiple/Sample_2.sf": "salmon",
    "salmon/tximportData/salmon_dm/README.md": "ignored",
    "salmon/tximportData/salmon_dm/SRR1197474/quant.sf": "salmon",
    "star/ERR458837_subsamp_1ReadsPerGene.out.tab": "star",
    "tx2gene/kb_python/transcripts_to_genes.txt": "ignored",
    "tx2gene/pytximport/transcript_to_gene_map.csv": "ignored",
    "tx2gene/pytximport/transcript_to_gene_map_gene_name.csv": "ignored",
    "tx2gene/sleuth/target_mapping.txt": "ignored",
    "umi_tools/UMI-tools/count_single_cells_gene_tag.tsv": "umi_tools",
    "umi_tools/UMI-tools/count_single_cells_gene_tag_wide.tsv": "wide_table",  # nothing tells it apart
    "umi_tools/UMI-tools/count_tab.tsv": "cell_table",  # `gene count`: one cell
    "umi_tools/UMI-tools/count_tab_cell.tsv": "umi_tools",
    "umi_tools/anndata/umi_tools.tsv.gz": "umi_tools",
    "wide_matrix/gemma/GSE19166_expression_count.test.txt": "wide_table",
    "wide_matrix/gemma/GSE29006_expression_count.test.txt": "wide_table",
    "wide_matrix/pasilla/pasilla_gene_counts.tsv": "wide_table",
    "wide_matrix/pasilla/pasilla_sample_annotation.csv": "unrecognised",  # a sample sheet, not counts
    "wide_matrix/pytximport/fabry_disease/counts_tximport_no.csv": "wide_table",
}

# Files added for the real-uploads issue (12): what gseio makes of them today, until that issue reads them
UPLOADS_TODAY = {
    "10x_h5_cellranger6/scpcaData/Breast_Cancer_3p_LT/cellranger_cdna/outs/filtered_feature_bc_matrix.h5": (
        "tenx_h5"
    ),
    "10x_h5_cellranger6/scpcaData/Breast_Cancer_3p_LT/cellranger_cdna/outs/metrics_summary.csv": "unrecognised",
    "alevin/tximportData/mouse1_LPS2_50/alevin/featureDump.txt": "wide_table",  # per-cell QC read as counts
    "alevin/tximportData/mouse1_LPS2_50/alevin/quants_mat.gz": "unrecognised",
    "alevin/tximportData/mouse1_LPS2_50/alevin/quants_mat_cols.txt": "unrecognised",
    "alevin/tximportData/mouse1_LPS2_50/alevin/quants_mat_rows.txt": "unrecognised",
    "alevin/tximportData/mouse1_LPS2_50/aux_info/alevin_meta_info.json": "ignored",
    "alevin/tximportData/mouse1_LPS2_50/aux_info/meta_info.json": "ignored",
    "alevin/tximportData/mouse1_LPS2_50/cmd_info.json": "ignored",
    "cellranger_arc_atac/TENxIO/10k_pbmc_ATACv2_f_bc_ex.h5": "tenx_h5",  # peaks read as genes
    "cellranger_arc_atac/TENxIO/pbmc_3k_ff_bc_ex.mtx": "unrecognised",
    "cellranger_arc_atac/TENxIO/pbmc_granulocyte_sorted_3k_ex_atac_peak_annotation.tsv": "unrecognised",
    "geo_soft/geofetch/GSE146540/GSE.soft": "ignored",
    "geo_soft/geofetch/GSE146540/GSM.soft": "ignored",
    "h5ad/zellkonverter/example_anndata.h5ad": "h5ad",
    "kb_count/kb_python/counts/duplicated.genes.txt": "unrecognised",
    "kb_count/kb_python/counts/genes.barcodes.txt": "bustools",
    "kb_count/kb_python/counts/genes.genes.txt": "bustools",
    "kb_count/kb_python/counts/genes.h5ad": "h5ad",
    "kb_count/kb_python/counts/genes.loom": "loom",
    "kb_count/kb_python/counts/genes.mtx": "bustools",
    "kb_count/kb_python/counts/genes_duplicated.mtx": "unrecognised",
    "loom/LoomExperiment/L1_DRG_20_example.loom": "loom",
}
EXPECTED.update(UPLOADS_TODAY)


@pytest.fixture(scope="module")
def manifest(realdata):
    return gseio.inspect_input(realdata, read=False)


def _assigned(manifest) -> dict[str, str]:
    got = {}
    for unit in manifest["units"]:
        for rel in unit["files"].values():
            assert rel not in got, f"{rel} belongs to two units"
            got[rel] = unit["format"]
    for entry in manifest["ignored"]:
        got[entry["file"]] = "ignored"
    for entry in manifest["unrecognised"]:
        got[entry["file"]] = "unrecognised"
    return got


def test_every_real_file_is_accounted_for_exactly_as_expected(realdata, manifest):
    got = _assigned(manifest)
    expected = {**EXPECTED, "SOURCES.md": "ignored"}
    assert set(got) == set(expected)  # nothing lost, nothing invented
    wrong = {f: (got[f], want) for f, want in expected.items() if got[f] != want}
    assert wrong == {}


def test_units_of_the_real_data(manifest):
    units = {u["unit"]: u for u in manifest["units"]}
    # one 10x unit per prefixed GEO sample, named by its GSM
    prefixed = [u for u in units.values() if u["unit"].startswith("geo_10x_prefixed/")]
    assert sorted(u["sample"] for u in prefixed) == ["GSM7022367", "GSM7022368"]
    # a kallisto folder and a salmon folder are read once, not once per file
    assert sum(u["format"] == "kallisto" and "sleuth_small" in u["unit"] for u in units.values()) == 1
    assert sum(u["format"] == "salmon" and "WT_REP1" in u["unit"] for u in units.values()) == 1


def test_the_whole_real_data_tree_assembles(realdata, manifest):
    """Every unit of every format in one build: cells add up, nothing unaccounted for."""
    # Seurat's hand-made genes.tsv has one placeholder id on every row
    with pytest.warns(gseio.errors.GseioWarning) as caught:
        adata = gseio.read_gse_dir(realdata, allow_mixed=True, on_error="skip", gene_ids="exact")
    messages = sorted(str(w.message) for w in caught)
    assert any("10x_v2/seurat/genes.tsv: every feature id is the same placeholder" in m for m in messages)
    assert sorted(gseio.build_report(adata)["warnings"]) == messages
    prov = adata.uns["gseio"]
    skipped = dict(zip(prov["skipped_files"], prov["skipped_reasons"], strict=True))
    # the tree holds several matrices twice, in two formats (10x mtx and h5, htseq table and loom, ...):
    # each second copy is caught by its content and skipped, so no cell is counted twice
    duplicates = {f for f, reason in skipped.items() if reason.startswith("DuplicateInputError")}
    assert {
        "10x_v2/scanpy/1.2.0/filtered_gene_bc_matrices_h5.h5",
        "loom/htseq/bamfile_no_qualities.loom",
    } <= duplicates
    assert all("same cells and counts as" in skipped[f] for f in duplicates)
    assert sorted(set(skipped) - duplicates) == sorted(e["file"] for e in manifest["unrecognised"])
    with pytest.warns(gseio.errors.GseioWarning, match="same placeholder"):
        described = gseio.inspect_input(realdata)
    assert adata.n_obs == sum(u["cells"] for u in described["units"] if u["unit"] not in duplicates)
    assert len(prov["files"]) == len(manifest["units"]) - len(duplicates)
    assert adata.obs_names.is_unique
    assert adata.X.has_canonical_format
    assert (adata.X.data > 0).all()
    assert {"gene_symbols", "length"} <= set(adata.var.columns)
