"""gseio.genes.gtf: gene tables from GTFs and length tables, and the Ensembl GTF download helper.

Every expectation on a real GTF comes from an independent reference written here in plain
Python (line splitting, a dictionary of attributes, sets of covered positions or a simple
interval-merging loop), never from gene_table's own output.
"""

from __future__ import annotations

import gzip
import http.server
import shutil
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gseio.errors import EmptyFileError, FormatError, InputError
from gseio.genes import fetch_ensembl_gtf, gene_table
from gseio.genes.gtf import union_lengths

GTF_DIR = "gtf"
YEAST_GTF = "gtf/htseq/Saccharomyces_cerevisiae.SGD1.01.56.gtf.gz"
YEAST_COUNTS = "featurecounts/GenomicsAotearoa/yeast_counts_all_chr.txt"


# --- an independent reference -------------------------------------------------------------------


def reference_genes(path: Path, feature: str = "exon") -> dict[str, dict]:
    """Per raw gene_id: its first row's attributes, its sequences and its (start, end) intervals."""
    text = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    genes: dict[str, dict] = {}
    for line in text.decode().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        seqname, _, kind, start, end, _, _, _, attributes = line.split("\t")
        if kind != feature:
            continue
        attrs: dict[str, str] = {}
        for item in attributes.split(";"):
            key, _, value = item.strip().partition(" ")
            if key:
                attrs.setdefault(key, value.strip().strip('"'))
        gene = genes.setdefault(attrs["gene_id"], {"attrs": attrs, "seqs": [], "intervals": []})
        if seqname not in gene["seqs"]:
            gene["seqs"].append(seqname)
        gene["intervals"].append((seqname, int(start), int(end)))
    return genes


def covered_positions(intervals: list[tuple[str, int, int]]) -> int:
    """Brute force: the number of distinct (sequence, position) pairs."""
    return len({(seq, p) for seq, s, e in intervals for p in range(s, e + 1)})


def merged_length(intervals: list[tuple[str, int, int]]) -> int:
    """A plain interval merge: sort, extend the current run while intervals touch it."""
    total, current = 0, None
    for seq, s, e in sorted(intervals):
        if current is None or seq != current[0] or s > current[2]:
            total += 0 if current is None else current[2] - current[1] + 1
            current = [seq, s, e]
        else:
            current[2] = max(current[2], e)
    return total + (0 if current is None else current[2] - current[1] + 1)


def expected_row(raw_id: str, gene: dict) -> dict:
    attrs = gene["attrs"]
    if "." in raw_id:  # GENCODE: the version is part of the id
        stable = raw_id.split(".")[0] + ("_PAR_Y" if raw_id.endswith("_PAR_Y") else "")
        version = raw_id
    else:
        stable = raw_id
        version = f"{raw_id}.{attrs['gene_version']}" if "gene_version" in attrs else None
    return {
        "gene_id": stable,
        "gene_id_version": version,
        "gene_symbol": attrs.get("gene_name") or None,
        "biotype": attrs.get("gene_biotype", attrs.get("gene_type")),
        "chromosome": ";".join(gene["seqs"]),
    }


def missing(value: object) -> object:
    return None if value is pd.NA else value


# --- real GTFs ---------------------------------------------------------------------------------


def _real_gtfs() -> list[str]:
    from conftest import REALDATA

    return sorted(str(p.relative_to(REALDATA)) for p in (REALDATA / GTF_DIR).rglob("*.gtf*"))


@pytest.mark.parametrize("name", _real_gtfs())
def test_real_gtf_matches_reference(realdata: Path, name: str) -> None:
    path = realdata / name
    reference = reference_genes(path)
    table = gene_table(path)
    assert len(table) == len(reference)
    assert table.index.name == "gene_id"
    assert list(table.columns) == ["gene_id_version", "gene_symbol", "biotype", "chromosome", "length"]
    small = sum(len(g["intervals"]) for g in reference.values()) < 1000
    for raw_id, gene in reference.items():
        want = expected_row(raw_id, gene)
        got = table.loc[want["gene_id"]]
        for column in ("gene_id_version", "gene_symbol", "biotype", "chromosome"):
            assert missing(got[column]) == want[column], (raw_id, column)
        # brute force on the small files; the yeast GTF's 9 Mb of exons go through the plain merge
        length = covered_positions(gene["intervals"]) if small else merged_length(gene["intervals"])
        assert got["length"] == length, raw_id
    # the order is that of first appearance in the file
    assert list(table.index) == [expected_row(k, g)["gene_id"] for k, g in reference.items()]


def test_known_values(realdata: Path) -> None:
    human = gene_table(realdata / "gtf/htseq/HomoSapiens.GRCh38-2020-A_subsampled.gtf")
    assert human.loc["ENSG00000251562", "gene_symbol"] == "MALAT1"
    assert human.loc["ENSG00000251562", "gene_id_version"] == "ENSG00000251562.8"
    pytx = gene_table(realdata / "gtf/pytximport/annotation.gtf")
    assert pytx["gene_symbol"].isna().sum() == 5  # five genes of that file have no gene_name
    yeast = gene_table(realdata / YEAST_GTF)
    assert yeast["gene_id_version"].isna().all()  # Ensembl 56 had no gene_version attribute
    assert yeast.loc["YAL069W", "chromosome"] == "I"
    assert str(yeast["length"].dtype) == "Int64"
    assert str(yeast["gene_symbol"].dtype) == "string"


def test_yeast_lengths_match_featurecounts(realdata: Path) -> None:
    """Our union lengths against featureCounts' own ``Length`` column.

    The counts were made with Ensembl's R64-1-1.99 annotation, the GTF is the older
    SGD1.01.56; genes whose exons did not change between the two must match exactly. The
    ones that differ are re-annotated ORFs (changed starts, introns) and Ty element ORFs
    whose frameshift exons were redrawn (off by one base), about 1.5% of shared genes.
    """
    table = gene_table(realdata / YEAST_GTF)
    counts = pd.read_csv(realdata / YEAST_COUNTS, sep="\t", comment="#", index_col=0)
    shared = [g for g in table.index if g in counts.index]
    ours = table.loc[shared, "length"].to_numpy(dtype=np.int64)
    theirs = counts.loc[shared, "Length"].to_numpy(dtype=np.int64)
    exact = int((ours == theirs).sum())
    print(f"{exact} of {len(shared)} shared genes ({exact / len(shared):.1%}) have featureCounts' exact length")
    assert len(shared) > 7000
    assert exact / len(shared) >= 0.95


def test_featurecounts_output_read_as_length_table(realdata: Path) -> None:
    table = gene_table(realdata / YEAST_COUNTS)
    counts = pd.read_csv(realdata / YEAST_COUNTS, sep="\t", comment="#", index_col=0)
    assert list(table.index) == list(counts.index)
    assert table["length"].to_numpy(dtype=np.int64).tolist() == counts["Length"].tolist()
    assert table["gene_symbol"].isna().all()


# --- synthetic GTFs: the corners the real files do not have ----------------------------------------

GENCODE_LINES = [
    "##description: test",
    'chrX\tHAVANA\tgene\t100\t400\t.\t+\t.\tgene_id "ENSG00000002586.20"; gene_type "protein_coding"; '
    'gene_name "CD99";',
    'chrX\tHAVANA\texon\t100\t200\t.\t+\t.\tgene_id "ENSG00000002586.20"; transcript_id "ENST1.1"; '
    'gene_type "protein_coding"; gene_name "CD99";',
    'chrX\tHAVANA\texon\t150\t300\t.\t+\t.\tgene_id "ENSG00000002586.20"; transcript_id "ENST2.1"; '
    'gene_type "protein_coding"; gene_name "CD99";',
    'chrY\tHAVANA\texon\t100\t200\t.\t+\t.\tgene_id "ENSG00000002586.20_PAR_Y"; transcript_id "ENST1.1_PAR_Y"; '
    'gene_type "protein_coding"; gene_name "CD99";',
    # an odd layout: two spaces, a value longer than the fast path's window, havana_gene_id first
    'chr1\tX\texon\t10\t19\t.\t-\t.\thavana_gene_id "OTT1";  gene_id  "ENSG00000000001.3";  '
    'gene_name "A_VERY_LONG_GENE_NAME_OF_MORE_THAN_THIRTY_TWO_CHARACTERS";',
    # unquoted values, no trailing semicolon
    "chr1\tX\texon\t30\t39\t.\t-\t.\tgene_id ENSG00000000002; gene_version 4; gene_name ABC",
]


def test_gencode_corners(tmp_path: Path) -> None:
    path = tmp_path / "gencode.gtf.gz"
    path.write_bytes(gzip.compress("\n".join(GENCODE_LINES).encode()))
    table = gene_table(path)
    assert list(table.index) == [
        "ENSG00000002586",
        "ENSG00000002586_PAR_Y",
        "ENSG00000000001",
        "ENSG00000000002",
    ]
    assert table.loc["ENSG00000002586", "length"] == 201  # 100-300: the overlap counted once
    assert table.loc["ENSG00000002586_PAR_Y", "gene_id_version"] == "ENSG00000002586.20_PAR_Y"
    assert table.loc["ENSG00000002586_PAR_Y", "chromosome"] == "chrY"
    assert (
        table.loc["ENSG00000000001", "gene_symbol"] == "A_VERY_LONG_GENE_NAME_OF_MORE_THAN_THIRTY_TWO_CHARACTERS"
    )
    assert table.loc["ENSG00000000001", "gene_id_version"] == "ENSG00000000001.3"
    assert table.loc["ENSG00000000002", "gene_id_version"] == "ENSG00000000002.4"
    assert table.loc["ENSG00000000002", "gene_symbol"] == "ABC"
    assert table["biotype"].isna().tolist() == [False, False, True, True]


def test_gene_on_two_sequences_and_cds(tmp_path: Path) -> None:
    path = tmp_path / "two.gtf"
    path.write_text(
        'c1\ts\texon\t1\t10\t.\t+\t.\tgene_id "G";\n'
        'c2\ts\texon\t1\t10\t.\t+\t.\tgene_id "G";\n'
        'c1\ts\tCDS\t3\t5\t.\t+\t0\tgene_id "G";\n'
    )
    table = gene_table(path)
    assert table.loc["G", "length"] == 20  # the same coordinates on two sequences are different bases
    assert table.loc["G", "chromosome"] == "c1;c2"
    assert gene_table(path, feature="CDS").loc["G", "length"] == 3


def test_ready_length_table(tmp_path: Path) -> None:
    path = tmp_path / "lengths.tsv"
    path.write_text(
        "Gene_ID\tGene_name\tGene_length\n"
        "ENSG00000141510.17\tTP53\t2579\n"
        "ENSG00000000003\tTSPAN6\t4535\n"
        "ENSG00000000005\tnotAvailable\tNA\n"
    )
    table = gene_table(path)
    assert list(table.index) == ["ENSG00000141510", "ENSG00000000003", "ENSG00000000005"]
    assert table.loc["ENSG00000141510", "gene_id_version"] == "ENSG00000141510.17"
    assert table["gene_symbol"].tolist()[:2] == ["TP53", "TSPAN6"]
    assert table["gene_symbol"].isna().tolist() == [False, False, True]
    assert table["length"].isna().tolist() == [False, False, True]
    assert table.loc["ENSG00000000003", "length"] == 4535
    assert table["biotype"].isna().all()

    csv = tmp_path / "lengths.csv.gz"
    csv.write_bytes(gzip.compress(b"gene_id,gene_name,length\nA,a,10\nB,,20\n"))
    table = gene_table(csv)
    assert table["length"].tolist() == [10, 20]
    assert table["gene_symbol"].isna().tolist() == [False, True]


def test_ready_table_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text("Gene_ID\tGene_length\nA\t10\nB\tlong\n")
    with pytest.raises(FormatError, match=r"line 3.*'B'") as info:
        gene_table(bad)
    assert info.value.path == str(bad)
    clash = tmp_path / "clash.tsv"
    clash.write_text("Gene_ID\tGene_length\nA\t10\nA\t11\n")
    with pytest.raises(FormatError, match="'A' is listed more than once"):
        gene_table(clash)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"gene\tcount\nA\t1\n", "line 1 is neither a GTF line"),
        (b"#!genome-build x\n" + b"\x00\x01binary junk\n", "line 2 is neither"),
        (b'c\ts\texon\t1\t10\t.\t+\t.\tgene_id "G";\nc\ts\texon\t5\tten\t.\t+\t.\tgene_id "G";\n', "line 2"),
        (b'c\ts\texon\t1\t10\t.\t+\t.\tgene_id "G";\nc\ts\texon\t1\t10\n', "line 2 has 5 tab-separated"),
        (b'c\ts\texon\t1\t10\t.\t+\t.\tgene_id "G";\n\nc\ts\texon\t9\t3\t.\t+\t.\tgene_id "G";\n', "line 3"),
        (b'#h\nc\ts\texon\t1\t10\t.\t+\t.\tgene_name "G";\n', "line 2 is a 'exon' line without a gene_id"),
        (b'c\ts\tgene\t1\t10\t.\t+\t.\tgene_id "G";\n', "no 'exon' lines"),
    ],
)
def test_not_a_gtf(tmp_path: Path, content: bytes, match: str) -> None:
    path = tmp_path / "input.gtf.gz"
    path.write_bytes(gzip.compress(content))
    with pytest.raises(FormatError, match=match) as info:
        gene_table(path)
    assert info.value.path == str(path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.gtf"
    path.write_text("##only a header\n")
    with pytest.raises(EmptyFileError):
        gene_table(path)


# --- the union length property ---------------------------------------------------------------------

intervals = st.lists(
    st.tuples(st.integers(0, 4), st.integers(1, 300), st.integers(0, 60)), min_size=1, max_size=60
)


@settings(max_examples=300, deadline=None)
@given(intervals)
def test_union_length_is_the_covered_position_count(exons: list[tuple[int, int, int]]) -> None:
    keys = np.array([k for k, _, _ in exons])
    starts = np.array([s for _, s, _ in exons])
    ends = starts + np.array([w for _, _, w in exons])
    got_keys, got = union_lengths(keys, starts, ends)
    want = {k: covered_positions([("", s, s + w) for kk, s, w in exons if kk == k]) for k in set(keys.tolist())}
    assert dict(zip(got_keys.tolist(), got.tolist(), strict=True)) == want


@settings(max_examples=40, deadline=None)
@given(intervals)
def test_gene_table_length_is_the_covered_position_count(exons: list[tuple[int, int, int]]) -> None:
    import tempfile

    lines = [f'chr1\tt\texon\t{s}\t{s + w}\t.\t+\t.\tgene_id "G{k}";' for k, s, w in exons]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "random.gtf"
        path.write_text("\n".join(lines) + "\n")
        table = gene_table(path)
    for k in {k for k, _, _ in exons}:
        assert table.loc[f"G{k}", "length"] == covered_positions([("", s, s + w) for kk, s, w in exons if kk == k])


# --- fetch_ensembl_gtf against a local server ------------------------------------------------------


class _Handler(http.server.SimpleHTTPRequestHandler):
    requests: list[str]
    truncate: set[str]

    def log_message(self, *args: object) -> None:  # keep pytest's output clean
        pass

    def do_GET(self) -> None:
        self.requests.append(self.path)
        if self.path in self.truncate:  # promise the whole file, send half, hang up
            body = Path(self.translate_path(self.path)).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()


@pytest.fixture
def ensembl(tmp_path: Path, realdata: Path):
    """A loopback server laid out like ftp.ensembl.org/pub (two releases, decoy GTF variants)."""
    root = tmp_path / "www"
    gtf = gzip.compress((realdata / "gtf/pytximport/annotation.gtf").read_bytes())
    human = root / "release-111" / "gtf" / "homo_sapiens"
    human.mkdir(parents=True)
    for name in ("", ".chr", ".abinitio", ".chr_patch_hapl_scaff"):
        (human / f"Homo_sapiens.GRCh38.111{name}.gtf.gz").write_bytes(gtf)
    (human / "CHECKSUMS").write_text("0 0 Homo_sapiens.GRCh38.111.gtf.gz\n")
    (human / "README").write_text("readme\n")
    yeast = root / "release-111" / "gtf" / "saccharomyces_cerevisiae"
    yeast.mkdir(parents=True)
    shutil.copy(realdata / YEAST_GTF, yeast / "Saccharomyces_cerevisiae.R64-1-1.111.gtf.gz")
    broken = root / "release-111" / "gtf" / "mus_musculus"
    broken.mkdir(parents=True)
    (broken / "Mus_musculus.GRCm39.111.gtf.gz").write_bytes(gzip.compress(b"<html>not a gtf</html>\n"))
    (root / "release-110" / "gtf").mkdir(parents=True)

    handler = type("Handler", (_Handler,), {"requests": [], "truncate": set()})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a, **k: handler(*a, directory=str(root), **k)
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_fetch_downloads_the_main_gtf_and_caches_it(ensembl, tmp_path: Path, realdata: Path) -> None:
    url, handler = ensembl
    cache = tmp_path / "cache"
    path = fetch_ensembl_gtf("homo_sapiens", 111, cache_dir=cache, base_url=url)
    assert path == cache / "release-111" / "homo_sapiens" / "Homo_sapiens.GRCh38.111.gtf.gz"
    assert gzip.decompress(path.read_bytes()) == (realdata / "gtf/pytximport/annotation.gtf").read_bytes()
    assert handler.requests == [
        "/release-111/gtf/homo_sapiens/",
        "/release-111/gtf/homo_sapiens/Homo_sapiens.GRCh38.111.gtf.gz",
    ]
    assert len(gene_table(path)) == 12  # 11 gene lines, and PEX10 whose gene line the subset dropped
    assert [p.name for p in path.parent.iterdir()] == [path.name]

    again = fetch_ensembl_gtf("Homo sapiens", 111, cache_dir=cache, base_url=url)
    assert again == path
    assert len(handler.requests) == 2  # a cache hit asks the server nothing

    yeast = fetch_ensembl_gtf("saccharomyces_cerevisiae", 111, cache_dir=cache, base_url=url)
    assert yeast.name == "Saccharomyces_cerevisiae.R64-1-1.111.gtf.gz"


def test_interrupted_download_leaves_nothing(ensembl, tmp_path: Path) -> None:
    url, handler = ensembl
    handler.truncate.add("/release-111/gtf/homo_sapiens/Homo_sapiens.GRCh38.111.gtf.gz")
    cache = tmp_path / "cache"
    with pytest.raises(InputError, match="cut short"):
        fetch_ensembl_gtf("homo_sapiens", 111, cache_dir=cache, base_url=url)
    assert [p for p in cache.rglob("*") if p.is_file()] == []
    handler.truncate.clear()  # the next attempt succeeds
    assert fetch_ensembl_gtf("homo_sapiens", 111, cache_dir=cache, base_url=url).is_file()


def test_downloaded_file_that_is_not_a_gtf_is_not_kept(ensembl, tmp_path: Path) -> None:
    url, _ = ensembl
    cache = tmp_path / "cache"
    with pytest.raises(FormatError, match="not a GTF"):
        fetch_ensembl_gtf("mus_musculus", 111, cache_dir=cache, base_url=url)
    assert [p for p in cache.rglob("*") if p.is_file()] == []


def test_unknown_release_and_species_list_what_the_server_has(ensembl, tmp_path: Path) -> None:
    url, _ = ensembl
    with pytest.raises(InputError, match=r"no release 999; it has: release-110, release-111"):
        fetch_ensembl_gtf("homo_sapiens", 999, cache_dir=tmp_path, base_url=url)
    with pytest.raises(InputError, match=r"no species 'danio_rerio'.*homo_sapiens.*saccharomyces_cerevisiae"):
        fetch_ensembl_gtf("danio_rerio", 111, cache_dir=tmp_path, base_url=url)
    with pytest.raises(InputError, match="no species 'homo_sapiens'"):
        fetch_ensembl_gtf("homo_sapiens", 110, cache_dir=tmp_path, base_url=url)


def test_unreachable_server(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot reach the server"):
        fetch_ensembl_gtf("homo_sapiens", 111, cache_dir=tmp_path, base_url="http://127.0.0.1:9/")
