"""Compressed files and archives against corrupt and hostile input.

Decompression bombs, HTML pages saved under a data file's name, truncated or corrupt
gzip / bzip2 / xz / zip, zips of several files or with unsafe member names, nested
archives, and hostile tar members: each is refused or set aside with a typed error or
a reason naming the file, through ``gseio._open`` and through ``read_gse_dir``.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import shutil
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

import gseio
from gseio import _limits, _open
from gseio._parallel import ordered_map
from gseio._registry import detect_format
from gseio._unit import ReadOptions
from gseio.errors import CorruptFileError, DecompressionBombError, FormatError, InputError

COMPRESS: dict[str, Callable[[bytes], bytes]] = {
    "gz": gzip.compress,
    "bz2": bz2.compress,
    "xz": lzma.compress,
    "zip": lambda data: _zip({"counts.txt": data}),
}


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def _table(i: int) -> bytes:
    """A small per-cell count table, distinct for each ``i``."""
    return "".join(f"G{j}\t{(i * 7 + j) % 5}\n" for j in range(i, i + 30)).encode()


def _cells(folder: Path, n: int = 3) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"GSM{100 + i}_cell{i}.txt.gz" for i in range(n)]
    for i, path in enumerate(paths):
        path.write_bytes(gzip.compress(_table(i)))
    return paths


def _stream_all(path: Path) -> bytes:
    with _open.open_decompressed(path) as fh:
        chunks = []
        while chunk := fh.read(1 << 16):
            chunks.append(chunk)
    return b"".join(chunks)


def _read_both(path: Path) -> list[Callable[[], bytes]]:
    """The one-shot and the streaming path: each must fail the same way."""
    return [lambda: _open.read_bytes(path), lambda: _stream_all(path)]


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


def _reasons(adata, kind: str) -> dict[str, str]:
    prov = adata.uns["gseio"]
    return dict(zip(prov[f"{kind}_files"], prov[f"{kind}_reasons"], strict=True))


@pytest.fixture
def small_floor(monkeypatch: pytest.MonkeyPatch) -> int:
    """Bombs of a few MiB instead of the real 64 MiB floor, to keep the tests fast."""
    monkeypatch.setattr(_limits, "EXPANSION_FLOOR", 1 << 20)
    return 1 << 20


# --- decompression bombs -------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["gz", "bz2", "xz", "zip"])
def test_bomb_is_refused_on_both_paths(tmp_path: Path, small_floor: int, suffix: str) -> None:
    path = tmp_path / f"GSM1_cell.txt.{suffix}"
    path.write_bytes(COMPRESS[suffix](b"G1\t0\n" * (1 << 19)))  # 2.5 MiB of one repeated line
    size = path.stat().st_size
    for read in _read_both(path):
        with _open.expansion_limit(100), pytest.raises(DecompressionBombError) as info:
            read()
        message = str(info.value)
        assert message.startswith(f"{path}: its ")  # the file
        assert f"compressed size of {_limits._human(size)}" in message
        limit = max(100 * size, 1 << 20)
        assert f"expanded past {_limits._human(limit)}" in message  # how far it got
        assert "The limit is 100 times the compressed size (never below 1.0 MiB)" in message
        assert "max_expansion=" in message
        assert "--max-expansion" in message
        assert isinstance(info.value, CorruptFileError)


def test_real_gzip_bomb_at_the_default_limit(tmp_path: Path) -> None:
    member = gzip.compress(b"\0" * (16 << 20))  # ~1030x, the most deflate can do; 6 members = 96 MiB
    path = tmp_path / "bomb.txt.gz"
    path.write_bytes(member * 6)
    limit = _open.max_expanded_size(path.stat().st_size)
    assert limit is not None
    assert _open.EXPANSION_FLOOR < limit < 96 << 20
    for read in _read_both(path):
        with pytest.raises(DecompressionBombError, match=f"expanded past {_limits._human(limit)}"):
            read()


def test_compressible_data_below_the_limit_is_read(tmp_path: Path, small_floor: int) -> None:
    data = b"".join(b"Gene%d\t%s\n" % (i, b"\t".join([b"0"] * 300)) for i in range(2000))  # ~1.2 MB of zeros
    path = tmp_path / "dense.txt.gz"
    path.write_bytes(gzip.compress(data))
    ratio = len(data) / path.stat().st_size
    assert 100 < ratio < 1000  # compresses very well, and still below the default
    assert _open.read_bytes(path) == data
    assert _stream_all(path) == data
    with _open.expansion_limit(ratio / 2), pytest.raises(DecompressionBombError):
        _open.read_bytes(path)


def test_expansion_limit_can_be_lifted_and_is_checked(tmp_path: Path, small_floor: int) -> None:
    path = tmp_path / "zeros.txt.xz"
    path.write_bytes(lzma.compress(b"0" * (4 << 20)))
    with _open.expansion_limit(None):
        assert len(_open.read_bytes(path)) == 4 << 20
        assert len(_stream_all(path)) == 4 << 20
    with pytest.raises(DecompressionBombError):  # the limit is back after the block
        _open.read_bytes(path)
    for bad in (0, -1, float("nan"), "abc", True):
        with pytest.raises(ValueError, match="max_expansion"), _open.expansion_limit(bad):  # type: ignore[arg-type]
            pass


def test_sniffing_never_trips_the_limit(tmp_path: Path, small_floor: int) -> None:
    path = tmp_path / "bomb.txt.bz2"
    path.write_bytes(bz2.compress(b"G1\t0\n" * (1 << 19)))
    assert len(_open.read_bytes(path, limit=16384)) == 16384


def test_reader_threads_see_the_callers_limit() -> None:
    def limit_seen(_: int) -> float | None:
        return _limits._MAX_EXPANSION.get()

    with _open.expansion_limit(7.0):
        assert list(ordered_map(limit_seen, range(12), n_jobs=4)) == [7.0] * 12
        assert list(ordered_map(limit_seen, range(3), n_jobs=1)) == [7.0] * 3
    assert set(ordered_map(limit_seen, range(4), n_jobs=2)) == {_open.DEFAULT_MAX_EXPANSION}


def test_max_expansion_option() -> None:
    assert ReadOptions().max_expansion == _open.DEFAULT_MAX_EXPANSION == 1000
    assert ReadOptions(max_expansion="500").max_expansion == 500.0  # type: ignore[arg-type]
    assert ReadOptions(max_expansion="none").max_expansion is None  # type: ignore[arg-type]
    assert ReadOptions(max_expansion=None).max_expansion is None
    with pytest.raises(ValueError, match="max_expansion"):
        ReadOptions(max_expansion=0)


def test_max_expansion_on_the_command_line(tmp_path: Path) -> None:
    from gseio.cli import main

    result = CliRunner().invoke(main, ["build", "--help"])
    assert result.exit_code == 0
    assert "--max-expansion" in result.output


def test_bad_max_expansion_fails_before_reading(tmp_path: Path) -> None:
    _cells(tmp_path / "in")
    with pytest.raises(ValueError, match="max_expansion"):
        gseio.read_gse_dir(tmp_path / "in", max_expansion=-5)


@pytest.mark.parametrize("suffix", ["gz", "bz2", "xz", "zip"])
@pytest.mark.parametrize("n_jobs", [1, 3])
def test_bomb_among_good_cells(tmp_path: Path, small_floor: int, suffix: str, n_jobs: int) -> None:
    folder = tmp_path / "in"
    _cells(folder)
    bomb = folder / f"GSM900_bomb.txt.{suffix}"
    bomb.write_bytes(COMPRESS[suffix](b"G1\t0\n" * (1 << 19)))  # 2.5 MiB, ~1000x: a two-column table to sniffers
    # the engine applies options.max_expansion around the build; the block sets it for the threads meanwhile
    with _open.expansion_limit(100):
        adata = gseio.read_gse_dir(folder, on_error="skip", n_jobs=n_jobs, max_expansion=100)
        assert adata.n_obs == 3
        assert _reasons(adata, "skipped")[bomb.name].startswith("DecompressionBombError: its ")
        with pytest.raises(DecompressionBombError, match=bomb.name):
            gseio.read_gse_dir(folder, n_jobs=n_jobs, max_expansion=100)


# --- HTML pages saved under a data file's name ----------------------------------------------------------------

HTML_PAGES = [
    b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head><body>Not found</body></html>\n",
    b"  \r\n\t<html lang='en'><body>Sign in</body></html>",
    b"\xef\xbb\xbf<HTML>\n<BODY>Service unavailable</BODY></HTML>",
    b"<?xml version='1.0' encoding='UTF-8'?>\n<!DOCTYPE html PUBLIC '-//W3C//DTD XHTML 1.0 Strict//EN'>\n"
    b"<html xmlns='http://www.w3.org/1999/xhtml'><body>Error</body></html>",
    b"<!-- served by nginx -->\n<!doctype HTML><title>502</title>",
]


@pytest.mark.parametrize("page", HTML_PAGES)
@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".xz", ".zip"])
def test_html_page_named_compressed(tmp_path: Path, page: bytes, suffix: str) -> None:
    path = tmp_path / f"GSM1_counts.txt{suffix}"
    path.write_bytes(page)
    for read in [*_read_both(path), lambda: _open.open_seekable(path), lambda: detect_format(path)]:
        with pytest.raises(
            CorruptFileError, match=rf"is an HTML page, not data \(named \{suffix} but not"
        ) as info:
            read()
        assert "failed download" in str(info.value)
        assert "download it again" in str(info.value)
        assert info.value.path == str(path)


def test_html_page_sniffed_plain_or_gzipped(tmp_path: Path) -> None:
    plain = tmp_path / "GSM1_counts.txt"
    plain.write_bytes(HTML_PAGES[0])
    served_gzipped = tmp_path / "GSM2_counts.txt.gz"
    served_gzipped.write_bytes(gzip.compress(HTML_PAGES[1]))
    for path in (plain, served_gzipped):
        with pytest.raises(CorruptFileError, match="is an HTML page, not data: probably a failed download"):
            detect_format(path)


def test_text_that_only_mentions_html_is_not_refused(tmp_path: Path) -> None:
    path = tmp_path / "GSM1_counts.txt.gz"
    path.write_bytes(b"html\t3\n<htmlish>\t1\nHTML1\t2\n")  # plain text named .gz: read as it is
    assert _open.read_bytes(path).startswith(b"html\t3")
    assert not _open.looks_like_html(b"gene\tcount\n<html>\t1\n")


# --- truncated and corrupt compression ------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["gz", "bz2", "xz"])
def test_truncated_stream(tmp_path: Path, suffix: str) -> None:
    packed = COMPRESS[suffix](os.urandom(20000).hex().encode())
    path = tmp_path / f"GSM1_cell.txt.{suffix}"
    path.write_bytes(packed[: len(packed) * 2 // 3])
    for read in _read_both(path):
        with pytest.raises(CorruptFileError, match=r"is truncated: its .* data ends early") as info:
            read()
        assert str(path) in str(info.value)
        assert "download it again" in str(info.value)


@pytest.mark.parametrize("suffix", ["gz", "bz2", "xz"])
def test_corrupt_stream(tmp_path: Path, suffix: str) -> None:
    packed = bytearray(COMPRESS[suffix](os.urandom(20000).hex().encode()))
    if suffix == "gz":
        packed[-8] ^= 0xFF  # the CRC in the trailer
    else:
        for i in range(len(packed) // 2, len(packed) // 2 + 16):
            packed[i] ^= 0xFF
    path = tmp_path / f"GSM1_cell.txt.{suffix}"
    path.write_bytes(bytes(packed))
    for read in _read_both(path):
        with pytest.raises(CorruptFileError, match=r"is corrupt: its .* data cannot be decompressed") as info:
            read()
        assert str(path) in str(info.value)


def test_gzip_junk_after_the_data_is_corrupt_and_zero_padding_is_not(tmp_path: Path) -> None:
    data = _table(1)
    padded = tmp_path / "padded.txt.gz"
    padded.write_bytes(gzip.compress(data) + b"\0" * 1000)
    assert _open.read_bytes(padded) == data
    junk = tmp_path / "junk.txt.gz"
    junk.write_bytes(gzip.compress(data) + b"trailing junk")
    with pytest.raises(CorruptFileError, match="after the end of the gzip data are not gzip"):
        _open.read_bytes(junk)


def test_multi_member_gzip_is_read_whole(tmp_path: Path) -> None:
    parts = [_table(i) for i in range(50)]
    path = tmp_path / "bgzip_like.txt.gz"
    path.write_bytes(b"".join(gzip.compress(p) for p in parts))
    assert _open.read_bytes(path) == b"".join(parts)
    assert _stream_all(path) == b"".join(parts)


def test_truncated_and_corrupt_zip(tmp_path: Path) -> None:
    packed = _zip({"counts.txt": os.urandom(20000).hex().encode()})
    truncated = tmp_path / "GSM1_cell.txt.zip"
    truncated.write_bytes(packed[: len(packed) // 2])
    for read in _read_both(truncated):
        with pytest.raises(CorruptFileError, match="is a corrupt or truncated zip archive") as info:
            read()
        assert str(truncated) in str(info.value)
    damaged = bytearray(packed)
    start = packed.index(b"counts.txt") + len(b"counts.txt")  # the member's compressed bytes follow its name
    for i in range(start + 100, start + 120):
        damaged[i] ^= 0xFF
    corrupt = tmp_path / "GSM2_cell.txt.zip"
    corrupt.write_bytes(bytes(damaged))
    for read in _read_both(corrupt):
        with pytest.raises(CorruptFileError, match="corrupt") as info:
            read()
        assert str(corrupt) in str(info.value)


def test_missing_file_through_the_stream(tmp_path: Path) -> None:
    with pytest.raises(CorruptFileError, match="does not exist"):
        _open.open_decompressed(tmp_path / "nope.txt.gz")


# --- zip archives ---------------------------------------------------------------------------------------------


def test_zip_of_several_files_is_a_format_error(tmp_path: Path) -> None:
    path = tmp_path / "GSM1_counts.zip"
    path.write_bytes(_zip({"a.txt": _table(1), "b.txt": _table(2), "c/d.txt": _table(3)}))
    for read in _read_both(path):
        with pytest.raises(FormatError, match=r"zip archive holds 3 files \(a.txt, b.txt, c/d.txt\)"):
            read()


@pytest.mark.parametrize("member", ["../../evil.txt", "/abs/evil.txt", "dir/../../../evil.txt"])
def test_zip_member_with_unsafe_name_is_read_never_written(tmp_path: Path, member: str) -> None:
    folder = tmp_path / "in"
    _cells(folder)
    path = folder / "GSM900_unsafe.txt.zip"
    path.write_bytes(_zip({member: _table(9)}))
    before = _files(tmp_path)
    cwd = set(os.listdir())
    assert _open.read_bytes(path) == _table(9)
    adata = gseio.read_gse_dir(folder)
    assert adata.n_obs == 4
    assert "GSM900_unsafe.txt.zip" in set(adata.obs["source_file"])
    assert _files(tmp_path) == before
    assert set(os.listdir()) == cwd
    assert not Path("/abs/evil.txt").exists()


def test_encrypted_zip_is_a_format_error(tmp_path: Path) -> None:
    packed = bytearray(_zip({"counts.txt": _table(1)}))
    for signature, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # local and central headers
        at = packed.index(signature) + flag_at
        packed[at] |= 0x01  # "encrypted"
    path = tmp_path / "GSM1_cell.txt.zip"
    path.write_bytes(bytes(packed))
    with pytest.raises(FormatError, match="encrypted"):
        _open.read_bytes(path)


# --- nested archives ------------------------------------------------------------------------------------------


def _tar_bytes(members: dict[str, bytes], mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:  # type: ignore[call-overload]
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _nested_archives(folder: Path) -> dict[str, str]:
    """Write one archive of each kind into ``folder``; return file name -> expected reason start."""
    inner = {"GSM1_a.txt": _table(11), "GSM2_b.txt": _table(12)}
    archives = {
        "GSM800_cells.tar.gz": (_tar_bytes(inner, "w:gz"), "nested archive: never opened; extract it"),
        "GSM801_cells.tgz": (_tar_bytes(inner, "w:gz"), "nested archive: never opened; extract it"),
        "GSM802_cells.tar": (_tar_bytes(inner), "nested archive: never opened; extract it"),
        "GSM803_cells.zip": (_zip(inner), "zip archive of 2 files (not one zipped file): never opened; unzip it"),
        "GSM804_disguised.txt.gz": (
            gzip.compress(_tar_bytes(inner)),
            "tar archive (gzip-compressed): never opened; extract it",
        ),
        "GSM805_disguised.txt": (_tar_bytes({"x.txt": _table(13)}), "tar archive: never opened; extract it"),
        "GSM806_bundle.dat": (b"7z\xbc\xaf\x27\x1c" + os.urandom(64), "7-Zip archive: never opened; extract it"),
    }
    for name, (data, _) in archives.items():
        (folder / name).write_bytes(data)
    return {name: reason for name, (_, reason) in archives.items()}


@pytest.mark.parametrize("on_error", ["raise", "skip"])
def test_nested_archives_in_a_folder_are_reported_never_followed(tmp_path: Path, on_error: str) -> None:
    folder = tmp_path / "in"
    _cells(folder)
    expected = _nested_archives(folder)
    before = _files(tmp_path)
    adata = gseio.read_gse_dir(folder, on_error=on_error)  # type: ignore[arg-type]
    assert adata.n_obs == 3
    ignored = _reasons(adata, "ignored")
    for name, reason in expected.items():
        assert ignored[name].startswith(reason), (name, ignored[name])
    assert list(adata.uns["gseio"]["skipped_files"]) == []
    assert _files(tmp_path) == before  # nothing extracted


def test_nested_archives_in_a_raw_tar(tmp_path: Path) -> None:
    folder = tmp_path / "src"
    _cells(folder)
    expected = _nested_archives(folder)
    tar_path = tmp_path / "GSE1_RAW.tar"
    with tarfile.open(tar_path, "w") as tar:
        for path in sorted(folder.iterdir()):
            tar.add(path, arcname=path.name)
    before = _files(tmp_path)
    adata = gseio.read_gse_dir(tar_path)
    assert adata.n_obs == 3
    ignored = _reasons(adata, "ignored")
    for name, reason in expected.items():
        assert ignored[name].startswith(reason), (name, ignored[name])
    assert _files(tmp_path) == before


# --- hostile tar members --------------------------------------------------------------------------------------


def _hostile_tar(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    folder = tmp_path / "src"
    _cells(folder)
    tar_path = tmp_path / "evil.tar"
    expected: dict[str, str] = {}
    with tarfile.open(tar_path, "w") as tar:
        for path in sorted(folder.iterdir()):
            tar.add(path, arcname=path.name)

        def add(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"G1\t5\n", **attrs: object) -> None:
            info = tarfile.TarInfo(name)
            info.type = kind
            for key, value in attrs.items():
                setattr(info, key, value)
            if kind == tarfile.REGTYPE:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)

        unsafe = "unsafe member path (absolute or with '..'): never read or written"
        for name in ("../escape.txt", "/abs/path.txt", "ok/../../up.txt", "..\\windows.txt", "C:evil.txt"):
            add(name, data=_table(len(expected) + 20))
            expected[name] = unsafe
        add("../dir", tarfile.DIRTYPE)
        expected["../dir"] = unsafe
        add("passwd.txt", tarfile.SYMTYPE, linkname="/etc/passwd")
        expected["passwd.txt"] = "not a regular file (symbolic link to '/etc/passwd'): never followed"
        add("inside.txt.gz", tarfile.SYMTYPE, linkname="GSM100_cell0.txt.gz")
        expected["inside.txt.gz"] = "not a regular file (symbolic link to 'GSM100_cell0.txt.gz'): never followed"
        add("hard.txt.gz", tarfile.LNKTYPE, linkname="GSM101_cell1.txt.gz")
        expected["hard.txt.gz"] = "not a regular file (hard link to 'GSM101_cell1.txt.gz'): never followed"
        add("null", tarfile.CHRTYPE, devmajor=1, devminor=3)
        add("sda", tarfile.BLKTYPE, devmajor=8, devminor=0)
        expected["null"] = expected["sda"] = "not a regular file (device file): never read"
        add("pipe", tarfile.FIFOTYPE)
        expected["pipe"] = "not a regular file (FIFO): never read"
        add("subdir", tarfile.DIRTYPE)  # a safe directory is not reported
    return tar_path, expected


def test_hostile_tar_members_are_each_reported(tmp_path: Path) -> None:
    tar_path, expected = _hostile_tar(tmp_path)
    before = _files(tmp_path)
    adata = gseio.read_gse_dir(tar_path)
    assert sorted(adata.obs["source_file"].unique()) == [f"GSM10{i}_cell{i}.txt.gz" for i in range(3)]
    ignored = _reasons(adata, "ignored")
    assert ignored == expected
    assert _files(tmp_path) == before  # nothing extracted, in the folder or above it
    assert not (tmp_path.parent / "escape.txt").exists()
    assert not Path("/abs/path.txt").exists()


def test_tar_member_listed_twice_reads_the_later_copy(tmp_path: Path) -> None:
    tar_path = tmp_path / "twice.tar"
    earlier, later = gzip.compress(b"EARLIER\t5\nG1\t1\n"), gzip.compress(b"LATER\t5\nG1\t2\n")
    tar_path.write_bytes(_tar_bytes({"GSM1_a.txt.gz": earlier, "GSM2_b.txt.gz": gzip.compress(_table(3))}))
    with tarfile.open(tar_path, "a") as tar:
        info = tarfile.TarInfo("GSM1_a.txt.gz")
        info.size = len(later)
        tar.addfile(info, io.BytesIO(later))
    adata = gseio.read_gse_dir(tar_path)
    again = "listed again later in the archive: the later copy is read"
    assert _reasons(adata, "ignored") == {"GSM1_a.txt.gz": again}
    assert adata.n_obs == 2
    assert "LATER" in adata.var_names
    assert "EARLIER" not in adata.var_names


def test_truncated_raw_tar_reads_the_complete_members(tmp_path: Path) -> None:
    folder = tmp_path / "src"
    _cells(folder, n=4)
    whole = tmp_path / "whole.tar"
    with tarfile.open(whole, "w") as tar:
        for path in sorted(folder.iterdir()):
            tar.add(path, arcname=path.name)
    with tarfile.open(whole) as tar:
        last = tar.getmembers()[-1]
    raw = whole.read_bytes()

    in_data = tmp_path / "in_data.tar"  # cut inside the last member: it fails as truncated
    in_data.write_bytes(raw[: last.offset_data + last.size // 2])
    adata = gseio.read_gse_dir(in_data, on_error="skip")
    assert adata.n_obs == 3
    assert _reasons(adata, "skipped")[last.name].startswith("CorruptFileError: is cut short")
    assert "cut short" in _reasons(adata, "ignored")["in_data.tar"]
    with pytest.raises(CorruptFileError, match=r"in_data\.tar:GSM103_cell3\.txt\.gz: is cut short"):
        gseio.read_gse_dir(in_data)

    at_member = tmp_path / "at_member.tar"  # cut right before the last header: tarfile says nothing
    at_member.write_bytes(raw[: last.offset])
    adata = gseio.read_gse_dir(at_member)
    assert adata.n_obs == 3
    assert _reasons(adata, "ignored")["at_member.tar"].startswith(
        "the archive is cut short or damaged after GSM102_cell2.txt.gz: later members, if any, are missing"
    )

    in_header = tmp_path / "in_header.tar"
    in_header.write_bytes(raw[: last.offset + 200])
    assert "cut short" in _reasons(gseio.read_gse_dir(in_header), "ignored")["in_header.tar"]


def test_tar_cut_inside_its_first_header_is_not_a_tar(tmp_path: Path) -> None:
    path = tmp_path / "GSE1_RAW.tar"
    path.write_bytes(_tar_bytes({"GSM1_a.txt.gz": gzip.compress(_table(1))})[:300])
    with pytest.raises(InputError, match="neither a folder nor a tar archive"):
        gseio.read_gse_dir(path)


# --- special files in a folder --------------------------------------------------------------------------------


def test_folder_fifo_and_folder_links_are_reported(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    _cells(folder)
    os.mkfifo(folder / "GSM900_pipe.txt")
    outside = tmp_path / "outside"
    _cells(outside, n=1)
    (folder / "linked_dir").symlink_to(outside, target_is_directory=True)
    adata = gseio.read_gse_dir(folder)
    assert adata.n_obs == 3
    ignored = _reasons(adata, "ignored")
    assert ignored["GSM900_pipe.txt"] == "not a regular file"
    assert ignored["linked_dir"] == "symbolic link to a folder: not followed"


# --- every bad container among good cells, through the public API ---------------------------------------------

BAD_CONTAINERS: dict[str, tuple[Callable[[], bytes], type[Exception], str]] = {
    # name: (content, error under on_error="raise", start of the skipped reason)
    "GSM901_html.txt.gz": (lambda: HTML_PAGES[0], CorruptFileError, "CorruptFileError: is an HTML page"),
    "GSM902_html.txt": (lambda: HTML_PAGES[1], CorruptFileError, "CorruptFileError: is an HTML page"),
    "GSM903_trunc.txt.gz": (
        lambda: gzip.compress(_table(3) * 50)[:-40],
        CorruptFileError,
        "CorruptFileError: is truncated",
    ),
    "GSM904_trunc.txt.bz2": (
        lambda: bz2.compress(_table(4) * 50)[:-40],
        CorruptFileError,
        "CorruptFileError: is truncated",
    ),
    "GSM905_trunc.txt.xz": (
        lambda: lzma.compress(_table(5) * 50)[:-40],
        CorruptFileError,
        "CorruptFileError: is truncated",
    ),
    "GSM906_trunc.txt.zip": (
        lambda: _zip({"c.txt": _table(6) * 50})[:-60],
        CorruptFileError,
        "CorruptFileError: is a corrupt or truncated zip archive",
    ),
}


@pytest.mark.parametrize("name", list(BAD_CONTAINERS))
def test_each_bad_container_raises_its_typed_error(tmp_path: Path, name: str) -> None:
    content, error, _ = BAD_CONTAINERS[name]
    folder = tmp_path / "in"
    _cells(folder)
    (folder / name).write_bytes(content())
    with pytest.raises(error) as info:
        gseio.read_gse_dir(folder)
    assert name in str(info.value)


def test_bad_containers_are_skipped_and_good_cells_read(tmp_path: Path, small_floor: int) -> None:
    folder = tmp_path / "in"
    good = _cells(folder)
    for name, (content, _, _) in BAD_CONTAINERS.items():
        (folder / name).write_bytes(content())
    (folder / "GSM907_bomb.txt.gz").write_bytes(gzip.compress(b"G1\t0\n" * (1 << 19)))
    (folder / "GSM908_two.txt.zip").write_bytes(_zip({"a.txt": _table(8), "b.txt": _table(9)}))
    expected_ignored = _nested_archives(folder)
    expected_ignored["GSM908_two.txt.zip"] = "zip archive of 2 files"
    with _open.expansion_limit(100):  # see test_bomb_among_good_cells
        adata = gseio.read_gse_dir(folder, on_error="skip", max_expansion=100)
    assert sorted(adata.obs["source_file"].unique()) == sorted(p.name for p in good)
    skipped = _reasons(adata, "skipped")
    for name, (_, _, reason) in BAD_CONTAINERS.items():
        assert skipped[name].startswith(reason), (name, skipped[name])
    assert skipped["GSM907_bomb.txt.gz"].startswith("DecompressionBombError")
    assert len(skipped) == len(BAD_CONTAINERS) + 1
    ignored = _reasons(adata, "ignored")
    for name, reason in expected_ignored.items():
        assert ignored[name].startswith(reason), (name, ignored[name])


def test_real_10x_triplet_beside_bad_containers(realdata: Path, tmp_path: Path) -> None:
    source = realdata / "geo_10x_prefixed" / "GSE224438"
    folder = tmp_path / "in"
    folder.mkdir()
    for path in source.glob("GSM7022367_1_*"):  # copied to tmp_path only, never into the repo
        shutil.copyfile(path, folder / path.name)
    (folder / "GSM7022368_2-1_matrix.mtx.gz").write_bytes(HTML_PAGES[0])
    (folder / "GSM7022368_2-1_barcodes.tsv.gz").write_bytes(HTML_PAGES[0])
    (folder / "GSM7022368_2-1_features.tsv.gz").write_bytes(HTML_PAGES[0])
    adata = gseio.read_gse_dir(folder, on_error="skip")
    assert set(adata.obs["sample"]) == {"GSM7022367"}
    (reason,) = _reasons(adata, "skipped").values()
    assert reason.startswith("CorruptFileError: is an HTML page, not data (named .gz but not compressed)")


def test_uncompressed_member_cut_short_fails_instead_of_reading_partly(tmp_path: Path) -> None:
    whole = tmp_path / "whole.tar"
    with tarfile.open(whole, "w") as tar:
        for i in range(3):
            text = "".join(f"G{j}\t{(i + j) % 5}\n" for j in range(400)).encode()
            info = tarfile.TarInfo(f"GSM10{i}_cell{i}.txt")
            info.size = len(text)
            tar.addfile(info, io.BytesIO(text))
    with tarfile.open(whole) as tar:
        last = tar.getmembers()[-1]
    cut = tmp_path / "cut.tar"
    cut.write_bytes(whole.read_bytes()[: last.offset_data + last.size // 2])  # ends on a whole line, halfway
    with pytest.raises(
        CorruptFileError, match=r"cut\.tar:GSM102_cell2\.txt: is cut short: the archive ends after"
    ):
        gseio.read_gse_dir(cut)
    adata = gseio.read_gse_dir(cut, on_error="skip")
    assert adata.n_obs == 2
    assert _reasons(adata, "skipped")["GSM102_cell2.txt"].startswith("CorruptFileError: is cut short")
