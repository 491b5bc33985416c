from __future__ import annotations

import os
import signal
import subprocess
import sys
import tarfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from gseio._cache import UnitCache
from gseio._piece import GeneBlock, Piece
from gseio._source import Source
from gseio._unit import ReadOptions, Unit
from gseio.readers import cell_table

OPTIONS = ReadOptions()
BLOCK = GeneBlock.from_names([f"G{i}" for i in range(50)])


def _unit(path: Path, fmt: str = "cell_table") -> Unit:
    return Unit(format=fmt, sources={"data": Source.file(path)}, name=path.name, sample="S1")


def _input(tmp_path: Path, name: str = "GSM1_cell.txt", text: str = "G1\t3\n") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _make_pieces(i: int, block: GeneBlock = BLOCK) -> list[Piece]:
    """Deterministic pieces for unit ``i``: two pieces, float64 then float32 values."""
    rng = np.random.default_rng(i)
    pieces = []
    for j, dtype in enumerate((np.float64, np.float32)):
        n_cells = 2 + j
        nnz = rng.integers(0, len(block.names), n_cells + 1)
        indptr = np.concatenate([[0], np.cumsum(nnz[:n_cells])]).astype(np.int64)
        pieces.append(
            Piece(
                source=f"unit{i}.txt",
                cells=[f"cell{i}_{j}_{k}" for k in range(n_cells)],
                genes=block,
                indptr=indptr,
                indices=rng.integers(0, len(block.names), indptr[-1]).astype(np.int32),
                data=rng.random(indptr[-1]).astype(dtype),
                obs={"htseq_no_feature": rng.random(n_cells), "flag": np.arange(n_cells, dtype=np.int16)},
                values="counts" if j == 0 else "normalized",
                notes={"orientation": "genes x cells", "unit": str(i)},
            )
        )
    return pieces


def _assert_array(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype
    assert got.shape == want.shape
    if want.dtype == object:
        assert [type(v) for v in got] == [type(v) for v in want]
        assert all(a == b or (a != a and b != b) for a, b in zip(got, want, strict=True))  # NaN == NaN
    else:
        np.testing.assert_array_equal(got, want)


def _assert_block(got: GeneBlock, want: GeneBlock) -> None:
    assert got.key == want.key
    assert got.n_duplicates == want.n_duplicates
    _assert_array(got.names, want.names)
    assert list(got.annotations) == list(want.annotations)
    for column in want.annotations:
        _assert_array(got.annotations[column], want.annotations[column])


def _assert_pieces(got: list[Piece] | None, want: list[Piece]) -> None:
    assert got is not None
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        assert a.source == b.source
        assert a.cells == b.cells
        assert all(type(c) is str for c in a.cells)
        _assert_block(a.genes, b.genes)
        for name in ("indptr", "indices", "data"):
            _assert_array(getattr(a, name), getattr(b, name))
        assert list(a.obs) == list(b.obs)
        for name in b.obs:
            _assert_array(a.obs[name], b.obs[name])
        assert a.values == b.values
        assert a.notes == b.notes


def test_round_trip_every_field(tmp_path: Path) -> None:
    block = GeneBlock.from_names(
        ["ENSG1", "ENSG2", "ENSG3", "bad\udcff", "Ωmega"],
        n_duplicates=2,
        annotations={
            "gene_symbols": np.array(["A", "B", "", "D", "Ω"], dtype=object),
            "length": np.array([1.5, np.nan, 3.0, 4.0, 5.0]),
            "mixed": np.array(["x", None, np.nan, 7, True], dtype=object),
            "fixed": np.array(["a", "bb", "ccc", "d", "e"]),
            "chunks": np.arange(10, dtype=np.uint8).reshape(5, 2),
        },
    )
    pieces = _make_pieces(7, block)
    pieces[1].cells[0] = "cell\udc80 with ünïcode"
    unit = _unit(_input(tmp_path))
    cache = UnitCache(tmp_path / "cache")
    cache.put(unit, OPTIONS, pieces)
    _assert_pieces(cache.get(unit, OPTIONS), pieces)
    _assert_pieces(UnitCache(tmp_path / "cache").get(unit, OPTIONS), pieces)  # from disk, not from memory


def test_returned_arrays_are_writable(tmp_path: Path) -> None:
    unit = _unit(_input(tmp_path))
    UnitCache(tmp_path / "cache").put(unit, OPTIONS, _make_pieces(1))
    piece = UnitCache(tmp_path / "cache").get(unit, OPTIONS)[0]
    piece.data[:] = 0
    piece.indices += 1
    assert piece.data.flags.aligned
    assert piece.indices.flags.aligned


def test_empty_pieces_and_empty_unit(tmp_path: Path) -> None:
    empty = Piece("e", [], BLOCK, np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float32))
    unit = _unit(_input(tmp_path))
    cache = UnitCache(tmp_path / "cache")
    cache.put(unit, OPTIONS, [empty])
    _assert_pieces(cache.get(unit, OPTIONS), [empty])
    cache.put(unit, replace(OPTIONS, genome="none"), [])
    assert cache.get(unit, replace(OPTIONS, genome="none")) == []


def test_changed_file_or_option_misses(tmp_path: Path) -> None:
    path = _input(tmp_path)
    unit = _unit(path)
    cache = UnitCache(tmp_path / "cache")
    cache.put(unit, OPTIONS, _make_pieces(1))
    assert cache.key(unit, OPTIONS) == UnitCache(tmp_path / "cache").key(unit, OPTIONS)
    assert cache.get(unit, OPTIONS) is not None
    for changed in (
        replace(OPTIONS, duplicate_genes="first"),
        replace(OPTIONS, orientation="cells_by_genes"),
        replace(OPTIONS, gene_expression_only=True),
        replace(OPTIONS, genome="mm10"),
        replace(OPTIONS, strandedness="reverse"),
    ):
        assert cache.get(unit, changed) is None
    assert cache.get(unit, replace(OPTIONS, cache=object())) is not None  # the in-memory cache is no input
    assert cache.get(replace(unit, format="htseq"), OPTIONS) is None

    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000))
    assert cache.get(unit, OPTIONS) is not None  # touched, not changed: the key is the content
    path.write_text("G1\t30\n")  # one byte longer
    assert cache.get(unit, OPTIONS) is None
    path.write_text("G1\t4\n")  # the same size, and (below) the same modification time: cp -p, rsync -t
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size
    assert cache.get(unit, OPTIONS) is None
    path.write_text("G1\t3\n")  # the original bytes again
    assert cache.get(unit, OPTIONS) is not None
    path.unlink()
    assert cache.get(unit, OPTIONS) is None  # a vanished input is a miss, not an error
    cache.put(unit, OPTIONS, _make_pieces(1))  # and put does not raise either


def test_tx2gene_file_is_part_of_the_key(tmp_path: Path) -> None:
    unit = _unit(_input(tmp_path))
    tx2gene = _input(tmp_path, "tx2gene.tsv", "T1\tG1\n")
    options = replace(OPTIONS, tx2gene=tx2gene)
    cache = UnitCache(tmp_path / "cache")
    cache.put(unit, options, _make_pieces(1))
    assert cache.get(unit, options) is not None
    assert cache.get(unit, OPTIONS) is None
    tx2gene.write_text("T1\tG1\nT2\tG2\n")
    assert cache.get(unit, options) is None


def test_damaged_entries_are_misses(tmp_path: Path) -> None:
    unit = _unit(_input(tmp_path))
    cache = UnitCache(tmp_path / "cache")
    pieces = _make_pieces(3)
    cache.put(unit, OPTIONS, pieces)
    entry = tmp_path / "cache" / f"{cache.key(unit, OPTIONS)}.unit"
    good = entry.read_bytes()
    damaged = {
        "empty": b"",
        "truncated": good[: len(good) // 2],
        "one byte short": good[:-1],
        "one byte more": good + b"\0",
        "flipped": good[:-10] + bytes([good[-10] ^ 1]) + good[-9:],
        "header flipped": good[:50] + bytes([good[50] ^ 1]) + good[51:],
        "garbage": os.urandom(len(good)),
    }
    for what, content in damaged.items():
        entry.write_bytes(content)
        assert UnitCache(tmp_path / "cache").get(unit, OPTIONS) is None, what
    entry.write_bytes(good)
    _assert_pieces(UnitCache(tmp_path / "cache").get(unit, OPTIONS), pieces)

    (block_file,) = (tmp_path / "cache").glob("genes-*.bin")
    block_file.write_bytes(block_file.read_bytes()[:-3])
    assert UnitCache(tmp_path / "cache").get(unit, OPTIONS) is None
    block_file.unlink()
    assert UnitCache(tmp_path / "cache").get(unit, OPTIONS) is None
    UnitCache(tmp_path / "cache").put(unit, OPTIONS, pieces)  # a new instance writes the block again
    _assert_pieces(UnitCache(tmp_path / "cache").get(unit, OPTIONS), pieces)


def test_shared_gene_block_is_stored_once_and_returned_as_one_object(tmp_path: Path) -> None:
    big = GeneBlock.from_names([f"ENSG{i:011d}" for i in range(58_000)])
    units = [_unit(_input(tmp_path, f"GSM{i}.txt")) for i in range(40)]
    cache = UnitCache(tmp_path / "cache")
    for i, unit in enumerate(units):
        cache.put(unit, OPTIONS, _make_pieces(i, big))
    assert len(list((tmp_path / "cache").glob("genes-*.bin"))) == 1
    assert len(list((tmp_path / "cache").glob("*.unit"))) == 40
    assert cache.get(units[0], OPTIONS)[0].genes is big  # the object put is the object got

    fresh = UnitCache(tmp_path / "cache")
    blocks = {id(p.genes) for unit in units for p in fresh.get(unit, OPTIONS)}
    assert len(blocks) == 1
    _assert_block(fresh.get(units[5], OPTIONS)[1].genes, big)


def test_equal_names_with_other_annotations_are_another_block(tmp_path: Path) -> None:
    names = ["A", "B"]
    plain = GeneBlock.from_names(names)
    annotated = GeneBlock.from_names(names, annotations={"gene_symbols": np.array(["a", "b"], dtype=object)})
    deduplicated = GeneBlock.from_names(names, n_duplicates=1)
    assert plain.key == annotated.key == deduplicated.key
    cache = UnitCache(tmp_path / "cache")
    units = [_unit(_input(tmp_path, f"u{i}.txt")) for i in range(3)]
    for unit, block in zip(units, (plain, annotated, deduplicated), strict=True):
        cache.put(unit, OPTIONS, _make_pieces(0, block))
    fresh = UnitCache(tmp_path / "cache")
    for unit, block in zip(units, (plain, annotated, deduplicated), strict=True):
        _assert_block(fresh.get(unit, OPTIONS)[0].genes, block)


def test_concurrent_puts_and_gets(tmp_path: Path) -> None:
    units = [_unit(_input(tmp_path, f"GSM{i}.txt")) for i in range(64)]
    cache = UnitCache(tmp_path / "cache")
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for k in range(len(units)):
                i = (k + offset) % len(units)  # every unit is written by every thread, in a different order
                cache.put(units[i], OPTIONS, _make_pieces(i))
                got = cache.get(units[i], OPTIONS)
                if got is not None:
                    _assert_pieces(got, _make_pieces(i))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(8 * t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert not list((tmp_path / "cache").glob(".tmp-*"))
    fresh = UnitCache(tmp_path / "cache")
    for i, unit in enumerate(units):
        _assert_pieces(fresh.get(unit, OPTIONS), _make_pieces(i))


def test_leftover_temporary_files_are_ignored_and_swept(tmp_path: Path) -> None:
    unit = _unit(_input(tmp_path))
    cache = UnitCache(tmp_path / "cache")
    cache.put(unit, OPTIONS, _make_pieces(1))
    entry = tmp_path / "cache" / f"{cache.key(unit, OPTIONS)}.unit"
    partial = tmp_path / "cache" / ".tmp-partial"
    partial.write_bytes(entry.read_bytes()[:100])  # as a write killed before its rename leaves it
    entry.unlink()
    assert UnitCache(tmp_path / "cache").get(unit, OPTIONS) is None
    assert partial.exists()  # recent: could be a build still running
    os.utime(partial, (time.time() - 7200, time.time() - 7200))
    UnitCache(tmp_path / "cache")
    assert not partial.exists()


_KILLED_WRITER = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from test_cache import OPTIONS, _make_pieces, _unit
from gseio._cache import UnitCache
from gseio._piece import GeneBlock

root = Path(sys.argv[2])
cache = UnitCache(root / "cache")
block = GeneBlock.from_names([f"ENSG{i:011d}" for i in range(20_000)])
print("ready", flush=True)
while True:
    for i in range(20):
        cache.put(_unit(root / f"GSM{i}.txt"), OPTIONS, _make_pieces(i, block))
"""


def test_writer_killed_midway_leaves_no_wrong_entry(tmp_path: Path) -> None:
    units = [_unit(_input(tmp_path, f"GSM{i}.txt")) for i in range(20)]
    block = GeneBlock.from_names([f"ENSG{i:011d}" for i in range(20_000)])
    for delay in (0.0, 0.01, 0.05, 0.2):
        process = subprocess.Popen(
            [sys.executable, "-c", _KILLED_WRITER, str(Path(__file__).parent), str(tmp_path)],
            stdout=subprocess.PIPE,
        )
        assert process.stdout.readline() == b"ready\n"
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        cache = UnitCache(tmp_path / "cache")
        for i, unit in enumerate(units):
            got = cache.get(unit, OPTIONS)
            if got is not None:
                _assert_pieces(got, _make_pieces(i, block))
    assert any(UnitCache(tmp_path / "cache").get(unit, OPTIONS) is not None for unit in units)


def _tar(tmp_path: Path) -> tuple[Path, list[tarfile.TarInfo]]:
    members = tmp_path / "members"
    members.mkdir()
    (members / "GSM1_A1.counts.txt").write_text("gene\tA1\nG1\t3\nG2\t0\nG3\t5\n__no_feature\t9\n")
    (members / "GSM2_A2.counts.txt").write_text("gene\tA2\nG1\t1\nG2\t2\nG3\t0\n__no_feature\t4\n")
    tar = tmp_path / "GSE1_RAW.tar"
    with tarfile.open(tar, "w") as archive:
        for path in sorted(members.iterdir()):
            archive.add(path, arcname=path.name)
    with tarfile.open(tar) as archive:
        return tar, archive.getmembers()


def test_tar_members(tmp_path: Path) -> None:
    tar, members = _tar(tmp_path)
    units = [
        Unit(
            format="cell_table",
            sources={"data": Source(path=tar, rel=m.name, offset=m.offset_data, size=m.size)},
            name=m.name,
            sample=m.name[:4],
        )
        for m in members
    ]
    cache = UnitCache(tmp_path / "cache")
    parsed = [cell_table.read_unit(unit, OPTIONS) for unit in units]
    assert parsed[0][0].cells == ["A1"]
    assert "htseq_no_feature" in parsed[0][0].obs
    for unit, pieces in zip(units, parsed, strict=True):
        cache.put(unit, OPTIONS, pieces)
    assert cache.key(units[0], OPTIONS) != cache.key(units[1], OPTIONS)
    fresh = UnitCache(tmp_path / "cache")
    for unit, pieces in zip(units, parsed, strict=True):
        _assert_pieces(fresh.get(unit, OPTIONS), pieces)
    moved = replace(units[0], sources={"data": replace(units[0].main, offset=units[0].main.offset + 512)})
    assert fresh.get(moved, OPTIONS) is None
    stat = tar.stat()
    os.utime(tar, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000))  # the same tar downloaded again: hits
    assert all(fresh.get(unit, OPTIONS) is not None for unit in units)
    member = units[1].main
    with open(tar, "r+b") as fh:  # one member's bytes edited in place: the size and mtime stay
        fh.seek(member.offset)
        first = fh.read(1)
        fh.seek(member.offset)
        fh.write(b"X" if first != b"X" else b"Y")
    os.utime(tar, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert fresh.get(units[0], OPTIONS) is not None
    assert fresh.get(units[1], OPTIONS) is None


def test_uncacheable_values_are_skipped_quietly(tmp_path: Path) -> None:
    unit = _unit(_input(tmp_path))
    pieces = _make_pieces(1)
    pieces[0].obs["weird"] = np.array([object(), object()], dtype=object)
    cache = UnitCache(tmp_path / "cache")
    cache.put(unit, OPTIONS, pieces)
    assert cache.get(unit, OPTIONS) is None


def test_clear(tmp_path: Path) -> None:
    unit = _unit(_input(tmp_path))
    cache = UnitCache(tmp_path / "cache")
    cache.put(unit, OPTIONS, _make_pieces(1))
    cache.clear()
    assert not (tmp_path / "cache").exists()
    assert cache.get(unit, OPTIONS) is None
    cache.put(unit, OPTIONS, _make_pieces(1))  # the folder comes back
    _assert_pieces(cache.get(unit, OPTIONS), _make_pieces(1))
    (tmp_path / "cache" / "notes.txt").write_text("mine")
    cache.clear()
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["notes.txt"]


def test_per_cell_units_share_one_stored_gene_block(tmp_path: Path) -> None:
    """50 per-cell units over one 58,000-gene list: the list is written once, every unit reads back."""
    block = GeneBlock.from_names([f"ENSG{i:011d}" for i in range(58_000)])
    rng = np.random.default_rng(0)
    n_nonzero = 6_000
    indices = np.sort(rng.choice(58_000, n_nonzero, replace=False)).astype(np.int32)
    pieces = [
        Piece(
            "GSM1.txt",
            ["cell"],
            block,
            np.array([0, n_nonzero], dtype=np.int64),
            indices,
            rng.integers(1, 100, n_nonzero).astype(np.float32),
            obs={"htseq_no_feature": np.array([3.0])},
        )
    ]
    units = [_unit(_input(tmp_path, f"GSM{i}.txt")) for i in range(50)]
    cache = UnitCache(tmp_path / "cache")
    for unit in units:
        cache.put(unit, OPTIONS, pieces)
    assert len(list((tmp_path / "cache").glob("genes-*.bin"))) == 1
    assert len(list((tmp_path / "cache").glob("*.unit"))) == 50
    fresh = UnitCache(tmp_path / "cache")
    got = [fresh.get(unit, OPTIONS) for unit in units]
    for pieces_back in got:
        _assert_pieces(pieces_back, pieces)
    assert all(p[0].genes is got[0][0].genes for p in got)  # one block object for all


def test_resumed_build_never_serves_counts_of_an_edit_that_kept_size_and_mtime(tmp_path: Path) -> None:
    """``cp -p`` / ``rsync -t`` / ``touch -r``: the edit keeps size and mtime; the key is the content."""
    import gseio

    folder = tmp_path / "GSE1"
    folder.mkdir()
    for i in range(3):
        (folder / f"GSM{i}_cell.txt").write_text(f"G1\t{i + 1}\nG2\t7\n")
    edited = folder / "GSM1_cell.txt"
    first = gseio.read_gse_dir(folder, cache_dir=tmp_path / "cache")
    assert first.uns["gseio"]["units_from_cache"] == 0
    stat = edited.stat()
    edited.write_text("G1\t9\nG2\t7\n")  # same length as "G1\t2\nG2\t7\n"
    os.utime(edited, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (edited.stat().st_size, edited.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    again = gseio.read_gse_dir(folder, cache_dir=tmp_path / "cache")
    assert again.uns["gseio"]["units_from_cache"] == 2  # the two untouched files
    assert again.X.toarray().tolist() == [[1, 7], [9, 7], [3, 7]]
    import hashlib

    sha = {f["path"]: f["sha256"] for f in gseio.build_report(again)["files"]}
    assert sha["GSM1_cell.txt"] == hashlib.sha256(edited.read_bytes()).hexdigest()
