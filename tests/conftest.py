from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REALDATA = Path(os.environ.get("GSEIO_REALDATA", REPO.parent / "shared" / "realdata"))


@pytest.fixture(scope="session")
def realdata() -> Path:
    """The shared real-data folder; its absence is a failure, never a skip."""
    if not (REALDATA / "SOURCES.md").is_file():
        pytest.fail(f"real data not found at {REALDATA} (set GSEIO_REALDATA)")
    return REALDATA


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import gseio

    return gseio.make_demo(tmp_path_factory.mktemp("demo") / "GSE_demo_RAW")


def parse_two_column(path: Path) -> dict[str, float]:
    """Independent reference parser (plain Python) for two-column files in tests."""
    import bz2
    import gzip
    import lzma

    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    elif raw[:3] == b"BZh":
        raw = bz2.decompress(raw)
    elif raw[:6] == b"\xfd7zXZ\x00":
        raw = lzma.decompress(raw)
    text = raw.decode("utf-8-sig")
    result: dict[str, float] = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.replace(",", "\t").split()
        try:
            result[fields[0]] = float(fields[1])
        except ValueError:
            continue  # header
    return result


def distinct_copy(src: Path, dst: Path, tag: int) -> Path:
    """Copy ``src`` with the same content but other bytes, so that two copies are not one file twice.

    gzip files are recompressed with ``tag`` as the header's time stamp; a Matrix Market
    file gets a comment line; a barcodes file gets ``_<tag>`` after each barcode (when ``tag``),
    so that the copies are other cells. (gseio refuses one file, or one matrix, twice.)
    """
    import gzip

    dst.parent.mkdir(parents=True, exist_ok=True)
    data = src.read_bytes()
    if "barcodes" in dst.name and tag:  # other cells too: one matrix twice is refused as a duplicate
        packed = data[:2] == b"\x1f\x8b"
        text = gzip.decompress(data) if packed else data
        text = b"".join(line + b"_%d\n" % tag for line in text.splitlines() if line.strip())
        dst.write_bytes(gzip.compress(text, mtime=tag) if packed else text)
        return dst
    if data[:2] == b"\x1f\x8b":
        dst.write_bytes(gzip.compress(gzip.decompress(data), mtime=tag))
    elif data.startswith(b"%%MatrixMarket"):
        banner, _, rest = data.partition(b"\n")
        dst.write_bytes(banner + b"\n" + b"%% copy %d\n" % tag + rest)
    else:
        dst.write_bytes(data)
    return dst
