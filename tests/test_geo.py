from __future__ import annotations

import doctest

import gseio.geo


def test_docstring_examples():
    result = doctest.testmod(gseio.geo)
    assert result.attempted >= 7
    assert result.failed == 0


def test_sample_and_cell_names_from_file_names():
    assert gseio.geo.sample_of("GSM3021397_LM2_G15.hs.raw_counts.txt.gz") == "GSM3021397"
    assert gseio.geo.sample_of("ERR188021.genes.results.gz") == "ERR188021"
    assert gseio.geo.sample_of("SRR1_ReadsPerGene.out.tab") == "SRR1"
    assert gseio.geo.cell_id_from_name("GSM1_plate1_A01.counts.txt") == "plate1_A01"
    assert gseio.geo.gsm_accession("GSM12x") is None
