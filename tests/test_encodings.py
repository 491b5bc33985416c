"""Text encodings: names decoded one by one, UTF-16/32 with a byte-order mark read, the rest refused."""

from __future__ import annotations

import bz2
import codecs
import gzip
import io
import lzma
import re
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

import gseio
from gseio import _open
from gseio.errors import CorruptFileError, FormatError, GseioWarning
from gseio.readers._decode import decode_names

COMPRESS = {"gzip": gzip.compress, "bzip2": bz2.compress, "xz": lzma.compress}


def _zip(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("inner.txt", data)
    return buffer.getvalue()


def _tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:  # GEO's RAW.tar: uncompressed, files at the top
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _cells(adata) -> dict[str, dict[str, float]]:
    dense = adata.X.toarray()
    return {
        cell: {gene: v for gene, v in zip(adata.var_names, row.tolist(), strict=True) if v}
        for cell, row in zip(adata.obs["cell"], dense, strict=True)
    }


# ---- names decoded one by one


def test_one_latin1_name_leaves_the_other_names_of_its_file_utf8(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "GSM1_a.txt").write_bytes("α-actin\t3\nACTB\t1\n".encode())
    # one Windows-1252 byte (é = 0xe9) on line 2 once made the whole column Latin-1: α-actin became Î±-actin
    (folder / "GSM2_b.txt").write_bytes("α-actin\t2\n".encode() + b"caf\xe9\t4\nACTB\t5\n")
    with pytest.warns(GseioWarning, match=r"GSM2_b\.txt: 1 of 3 gene names is not valid UTF-8 \(line 2\)"):
        adata = gseio.read_gse_dir(folder)
    assert _cells(adata) == {"a": {"α-actin": 3, "ACTB": 1}, "b": {"α-actin": 2, "café": 4, "ACTB": 5}}


def test_the_warning_lists_the_first_lines_and_counts_the_rest(tmp_path):
    lines = b"".join(b"g%d\xe9\t1\n" % k if k % 2 else b"g%d\t1\n" % k for k in range(20))
    path = tmp_path / "c.txt"
    path.write_bytes(lines)
    message = r"10 of 20 gene names are not valid UTF-8 \(lines 2, 4, 6, 8, 10 and 5 more\)"
    with pytest.warns(GseioWarning, match=message):
        adata = gseio.read_cell_table(path)
    assert adata.var_names.tolist() == [f"g{k}é" if k % 2 else f"g{k}" for k in range(20)]


def test_windows_1252_first_latin1_for_its_undefined_bytes():
    # 0x96 is an en dash in Windows-1252 (a C1 control in Latin-1); 0x81 is undefined in Windows-1252
    names, recoded = decode_names([b"MT\x96CO1", b"x\x81", "naïve".encode(), None])
    assert names.tolist() == ["MT\u2013CO1", "x\x81", "naïve", ""]
    assert recoded == [0, 1]


def test_utf8_names_of_a_wide_table_stay_utf8_without_warning(tmp_path):
    # numpy's astype(str) decodes ASCII only: any non-ASCII name once made the whole column Latin-1
    path = tmp_path / "t.tsv"
    path.write_bytes("gene\tcellé\tc2\nα-actin\t1\t2\nACTB\t3\t0\n".encode())
    adata = gseio.read_wide_table(path)
    assert adata.obs_names.tolist() == ["cellé", "c2"]
    assert _cells(adata) == {"cellé": {"α-actin": 1, "ACTB": 3}, "c2": {"α-actin": 2}}


def test_latin1_header_field_and_label_of_a_wide_table(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_bytes(b"gene\tc\xe9ll\tc2\n" + "α-actin\t1\t2\n".encode() + b"caf\xe9\t3\t0\n")
    with pytest.warns(GseioWarning) as record:
        adata = gseio.read_wide_table(path)
    messages = [str(w.message) for w in record]
    assert any("1 of 3 header fields is not valid UTF-8 (line 1)" in m for m in messages)
    assert any("1 of 2 row labels is not valid UTF-8 (line 3)" in m for m in messages)
    assert _cells(adata) == {"céll": {"α-actin": 1, "café": 3}, "c2": {"α-actin": 2}}


def test_latin1_symbol_in_a_10x_features_file(tmp_path):
    folder = tmp_path / "s1"
    folder.mkdir()
    (folder / "barcodes.tsv").write_text("AAACCTGAGAAACCAT-1\n")
    (folder / "features.tsv").write_bytes(
        "ENSG00000000001\tα-actin\tGene Expression\n".encode() + b"ENSG00000000002\tcaf\xe9\tGene Expression\n"
    )
    (folder / "matrix.mtx").write_text("%%MatrixMarket matrix coordinate integer general\n2 1 2\n1 1 3\n2 1 4\n")
    with pytest.warns(GseioWarning, match=r"features\.tsv: 1 of 2 feature names is not valid UTF-8 \(line 2\)"):
        adata = gseio.read_10x_mtx(folder)
    assert adata.var["gene_symbols"].tolist() == ["α-actin", "café"]


def test_latin1_name_in_a_quantifier_table(tmp_path):
    path = tmp_path / "s.tsv"
    path.write_bytes("α-actin\tchrI\t1\n".encode() + b"caf\xe9\tchrII\t3\nACTB\tchrII\t2\n")
    with pytest.warns(GseioWarning, match=r"1 of 3 names in column 1 is not valid UTF-8 \(line 2\)"):
        adata = gseio.read(path, format="htseq")
    assert adata.var_names.tolist() == ["α-actin", "café", "ACTB"]
    assert adata.X.toarray().tolist() == [[1, 3, 2]]


# ---- UTF-16 and UTF-32 with a byte-order mark

TEXT = "gene\tcell_α\nα-actin\t3\n𝛼-tubulin\t2\nACTB\t0\n"  # 𝛼 (U+1D6FC) is a surrogate pair in UTF-16
BOMS = {
    "utf-16-le": codecs.BOM_UTF16_LE,
    "utf-16-be": codecs.BOM_UTF16_BE,
    "utf-32-le": codecs.BOM_UTF32_LE,
    "utf-32-be": codecs.BOM_UTF32_BE,
}


def _encoded(text: str, encoding: str) -> bytes:
    return BOMS[encoding] + text.encode(encoding)


@pytest.mark.parametrize("container", ["plain", "gzip", "tar"])
@pytest.mark.parametrize("encoding", sorted(BOMS))
def test_utf16_and_utf32_with_a_byte_order_mark_are_read(tmp_path, encoding, container):
    data = _encoded(TEXT, encoding)
    if container == "tar":
        adata = gseio.read_gse_dir(_tar(tmp_path / "GSE1_RAW.tar", {"GSM1_x.txt.gz": gzip.compress(data)}))
    else:
        path = tmp_path / "GSM1_x.txt"
        path.write_bytes(gzip.compress(data) if container == "gzip" else data)
        assert gseio.detect_format(path) == "cell_table"
        adata = gseio.read_cell_table(path)
    assert adata.obs["cell"].tolist() == ["cell_α"]
    assert _cells(adata) == {"cell_α": {"α-actin": 3, "𝛼-tubulin": 2}}


def test_utf16_features_file_of_a_10x_triplet(tmp_path):
    (tmp_path / "barcodes.tsv").write_text("AAACCTGAGAAACCAT-1\n")
    (tmp_path / "features.tsv").write_bytes(
        _encoded("ENSG00000000001\tα-actin\nENSG00000000002\tACTB\n", "utf-16-le")
    )
    (tmp_path / "matrix.mtx").write_text("%%MatrixMarket matrix coordinate integer general\n2 1 1\n2 1 4\n")
    adata = gseio.read_10x_mtx(tmp_path)
    assert adata.var_names.tolist() == ["ENSG00000000001", "ENSG00000000002"]
    assert adata.var["gene_symbols"].tolist() == ["α-actin", "ACTB"]


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_the_utf16_stream_is_utf8_in_any_read_size(tmp_path, compression):
    # longer than the transcoder's 1 MiB chunks, with surrogate pairs and line ends across the boundaries
    text = "".join(f"𝛼{k}é\t{k}\r\n" for k in range(150_000))
    data = _encoded(text, "utf-16-le")
    path = tmp_path / "big.txt"
    path.write_bytes(gzip.compress(data) if compression == "gzip" else data)
    expected = text.encode("utf-8")
    parts = []
    with _open.open_decompressed(path) as fh:
        while chunk := fh.read(4099):
            parts.append(chunk)
    assert b"".join(parts) == expected
    assert _open.read_bytes(path) == expected
    assert _open.read_bytes(path, limit=10_001) == expected[:10_001]


def test_invalid_utf16_after_its_byte_order_mark_is_corrupt(tmp_path):
    path = tmp_path / "x.txt"
    path.write_bytes(_encoded("gene\t1\n", "utf-16-le") + b"\x00\xd8A\x00")  # a lone high surrogate
    with pytest.raises(CorruptFileError, match="not valid UTF-16-LE"):
        gseio.read_cell_table(path)


@pytest.mark.parametrize("compression", ["none", "gzip"])
@pytest.mark.parametrize(("encoding", "order"), [("utf-16-le", "LE"), ("utf-16-be", "BE")])
def test_utf16_without_a_byte_order_mark_is_refused_with_a_hint(tmp_path, compression, encoding, order):
    data = "ENSG00000000001\t3\nENSG00000000002\t1\n".encode(encoding)
    path = tmp_path / "x.txt"
    path.write_bytes(gzip.compress(data) if compression == "gzip" else data)
    hint = (
        re.escape("UTF-16 text without a byte-order mark") + ".*" + re.escape(f"iconv -f UTF-16{order} -t UTF-8")
    )
    with pytest.raises(FormatError, match=hint):
        gseio.detect_format(path)
    with pytest.raises(FormatError, match=hint):
        gseio.read_cell_table(path)


def test_binary_with_nul_bytes_is_not_taken_for_utf16(tmp_path):
    # a NUL byte after *some* characters is binary junk, not UTF-16: no hint, the usual answer
    path = tmp_path / "x.bin"
    path.write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)))
    with pytest.raises(gseio.errors.UnknownFormatError, match="no reader recognises"):
        gseio.detect_format(path)


# ---- compressed twice


@pytest.mark.parametrize(
    ("outer", "inner", "undo"),
    [
        ("gzip", "gzip", "gunzip"),
        ("gzip", "bzip2", "gunzip"),
        ("gzip", "xz", "gunzip"),
        ("gzip", "zip", "gunzip"),
        ("bzip2", "gzip", "bunzip2"),
        ("xz", "gzip", "unxz"),
        ("zip", "gzip", "unzip"),
    ],
)
def test_data_compressed_twice_is_refused_with_a_hint(tmp_path, outer, inner, undo):
    text = b"ENSG00000000001\t3\nENSG00000000002\t1\n"
    once = _zip(text) if inner == "zip" else COMPRESS[inner](text)
    path = tmp_path / "x.txt.gz"
    path.write_bytes(_zip(once) if outer == "zip" else COMPRESS[outer](once))
    hint = re.escape(f"is compressed twice ({inner} data inside {outer})") + f".*Decompress it once \\({undo} it"
    with pytest.raises(FormatError, match=hint):
        gseio.detect_format(path)
    with pytest.raises(FormatError, match=hint):
        gseio.read_cell_table(path)


def test_a_tar_member_compressed_twice_is_named(tmp_path):
    good = gzip.compress(b"ENSG00000000001\t3\n")
    tar = _tar(tmp_path / "GSE1_RAW.tar", {"GSM1_a.txt.gz": good, "GSM2_b.txt.gz": gzip.compress(good)})
    with pytest.raises(FormatError, match=r"GSM2_b\.txt\.gz: is compressed twice \(gzip data inside gzip\)"):
        gseio.read_gse_dir(tar)
    adata = gseio.read_gse_dir(tar, on_error="skip")
    assert adata.obs["cell"].tolist() == ["a"]
