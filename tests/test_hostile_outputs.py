"""The output side under hostile and faulty conditions (issue 10): nothing deleted that gseio did not write,
outputs only inside OUTDIR, a full or read-only disk as a one-line error (never a crash), one build at a time,
OUTDIR's mode and group kept, values written exactly."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import stat
import struct
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from gseio.cli import main
from gseio.export.template import RAW_FILES

SRC = Path(__file__).resolve().parents[1] / "src"
#: Runs the CLI with the free-space check switched off, so that the writes themselves meet the full disk.
NO_PREFLIGHT = """
import sys
import gseio._outdir
gseio._outdir.check_space = lambda *args, **kwargs: None
if "--skip-template" in sys.argv:  # only the h5ad is written: it is the one that meets the full disk
    sys.argv.remove("--skip-template")
    import gseio.export.template
    gseio.export.template.write_template = lambda *args, **kwargs: []
from gseio.cli import main
main()
"""


def _series(folder: Path, n_files: int, n_genes: int = 2000, seed: int = 0) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    genes = [f"G{i}" for i in range(n_genes)]
    for i in range(n_files):
        values = rng.poisson(2.0, n_genes)
        text = "".join(f"{g}\t{v}\n" for g, v in zip(genes, values.tolist(), strict=True))
        (folder / f"GSM{100 + i}_c{i}.txt.gz").write_bytes(gzip.compress(text.encode(), compresslevel=1))
    return folder


def _gseio(*args: str, cwd: Path | None = None, script: str | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", script, *args] if script else [sys.executable, "-m", "gseio", *args]
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


def _one_line_error(done: subprocess.CompletedProcess) -> str:
    """The process failed cleanly: exit 1 (not a signal), and one line on stderr, no traceback."""
    assert done.returncode == 1, (done.returncode, done.stderr[-3000:])
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr[-3000:]
    assert lines[0].startswith("error: ")
    return lines[0]


class Mounts:
    """Small tmpfs and read-only mounts for a test, all unmounted at teardown."""

    def __init__(self) -> None:
        self.points: list[Path] = []

    def tmpfs(self, path: Path, size: str, *, read_only: bool = False) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        options = f"size={size}" + (",ro" if read_only else "")
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], check=True)
        self.points.append(path)
        return path

    def read_only(self, path: Path) -> Path:
        """Make the folder ``path`` a read-only bind mount of itself (root writes to chmod-ed folders)."""
        subprocess.run(["mount", "--bind", str(path), str(path)], check=True)
        self.points.append(path)
        subprocess.run(["mount", "-o", "remount,ro,bind", str(path)], check=True)
        return path

    def unmount_all(self) -> None:
        for point in reversed(self.points):
            subprocess.run(["umount", str(point)], check=False, capture_output=True)
        self.points.clear()


def _mount_problem(probe: Path) -> str | None:
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root"
    if shutil.which("mount") is None:
        return "no mount command"
    probe.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)], capture_output=True)
    if done.returncode != 0:
        return f"cannot mount a tmpfs here: {done.stderr.decode().strip()}"
    subprocess.run(["umount", str(probe)], check=True)
    probe.rmdir()
    return None


@pytest.fixture
def mounts(tmp_path):
    problem = _mount_problem(tmp_path / ".probe")
    if problem is not None:
        pytest.skip(problem)
    made = Mounts()
    try:
        yield made
    finally:
        made.unmount_all()


@pytest.fixture(scope="module")
def series(tmp_path_factory) -> Path:
    """60 cells x 2,000 genes: about 1.5 MB of template and 1 MB of h5ad."""
    return _series(tmp_path_factory.mktemp("in") / "GSE7_RAW", 60)


@pytest.fixture(scope="module")
def small_series(tmp_path_factory) -> Path:
    return _series(tmp_path_factory.mktemp("in_small") / "GSE7_RAW", 4, n_genes=50, seed=1)


# --- item 8: a full disk, a read-only file system ---------------------------------------------------------


def test_a_full_disk_is_found_before_writing_and_leaves_nothing(mounts, series, tmp_path):
    disk = mounts.tmpfs(tmp_path / "disk", "1m")
    for _ in range(3):
        line = _one_line_error(_gseio("build", str(series), "-o", str(disk / "out"), "-q"))
        assert f"{disk / 'out'}: not enough free space for the outputs" in line
        assert list(disk.iterdir()) == []  # no staging folder, no cache, no empty OUTDIR


@pytest.mark.parametrize(
    ("case", "options", "failing"),
    [
        ("matrix", [], "expressionMatrix_rawCounts.mtx"),
        ("h5ad", ["--skip-template"], "GSE7_RAW.h5ad"),
        ("out-of-core h5ad", ["--max-memory", "1KB"], "GSE7_RAW.h5ad"),
    ],
)
def test_a_disk_that_fills_while_writing_is_one_line_and_no_crash(mounts, series, tmp_path, case, options,
                                                                   failing):  # fmt: skip
    # without the free-space check the writes themselves meet the full disk: h5py used to crash the process
    disk = mounts.tmpfs(tmp_path / "disk", "1m")
    for _ in range(3):
        done = _gseio("build", str(series), "-o", str(disk / "out"), "-q", *options, script=NO_PREFLIGHT)
        line = _one_line_error(done)
        assert line == (f"error: {disk / 'out' / failing}: cannot be written: No space left on device; the disk "
                        "is full: free some space or write the outputs elsewhere (-o)"), case  # fmt: skip
        assert list(disk.iterdir()) == []


def test_old_outputs_survive_a_full_disk(mounts, series, small_series, tmp_path):
    disk = mounts.tmpfs(tmp_path / "disk", "2m")  # room for the small build, not for the other
    out = disk / "out"
    assert _gseio("build", str(small_series), "-o", str(out), "-q").returncode == 0
    (out / "notes.txt").write_text("mine\n")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    for script in (None, NO_PREFLIGHT):  # refused up front; and meeting the full disk mid-write
        _one_line_error(_gseio("build", str(series), "-o", str(out), "-q", "--overwrite", script=script))
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before
        assert [p.name for p in disk.iterdir()] == ["out"]  # no staging folder beside it


def test_a_read_only_file_system_fails_before_any_input_is_read(mounts, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "GSM1_a.txt").write_text("A\t1\nB\tNaN\n")  # an input error, if it were ever read
    disk = mounts.tmpfs(tmp_path / "ro", "1m", read_only=True)
    line = _one_line_error(_gseio("build", str(src), "-o", str(disk / "out")))
    assert line.startswith(f"error: {disk}")
    assert "Read-only file system; the file system is read-only: write the outputs elsewhere (-o)" in line


@pytest.mark.parametrize("resume", ["--resume", "--no-resume"])
def test_a_read_only_outdir_is_refused_up_front_and_left_as_it_was(mounts, small_series, tmp_path, resume):
    out = tmp_path / "out"
    assert _gseio("build", str(small_series), "-o", str(out), "-q").returncode == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    mounts.read_only(out)
    line = _one_line_error(_gseio("build", str(small_series), "-o", str(out), "-q", "--overwrite", resume))
    assert line.startswith(f"error: {out}: cannot be written: Read-only file system")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging folder, no lock file left


def test_a_read_only_parent_stages_locks_and_publishes_inside_outdir(mounts, small_series, tmp_path):
    parent = mounts.tmpfs(tmp_path / "parent", "1m")
    out = mounts.tmpfs(parent / "out", "4m")  # writable, in a parent that will not be
    subprocess.run(["mount", "-o", "remount,ro", str(parent)], check=True)
    (out / "notes.txt").write_text("mine\n")
    for overwrite in ([], ["--overwrite"]):
        done = _gseio("build", str(small_series), "-o", str(out), "-q", *overwrite)
        assert done.returncode == 0, done.stderr
        expected = [*RAW_FILES, "GSE7_RAW.h5ad", "build_report.json", "notes.txt"]
        assert sorted(p.name for p in out.iterdir()) == sorted(expected)  # no lock, staging or marker left
    assert json.loads((out / "build_report.json").read_text())["conservation"]["ok"]


def test_a_file_where_the_cache_folder_goes_is_an_output_error(small_series, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / ".gseio-cache").write_text("not a folder")
    result = CliRunner().invoke(main, ["build", str(small_series), "-o", str(out), "-q"])
    assert result.exit_code == 1
    assert result.output == (f"error: {out / '.gseio-cache'}: is a file, not gseio's resume cache folder: remove "
                             "it, or build without the cache (--no-resume)\n")  # fmt: skip
    assert (out / ".gseio-cache").read_text() == "not a folder"
    again = CliRunner().invoke(main, ["build", str(small_series), "-o", str(out), "-q", "--no-resume"])
    assert again.exit_code == 0, again.output
    assert (out / ".gseio-cache").read_text() == "not a folder"


# --- item 2: a tampered build_report.json deletes nothing it did not write -----------------------------


def _plant(out: Path, outside: Path) -> dict[str, bytes]:
    """Things of the user's in and around OUTDIR that a tampered report names; their bytes, by path."""
    (out / "notes.txt").write_text("my notes\n")
    (out / "downloaded_data").mkdir()
    (out / "downloaded_data" / "GSE7_RAW.tar").write_bytes(b"tar bytes")
    (outside / "x").write_text("beside OUTDIR\n")
    (outside / "canary.txt").write_text("anywhere\n")
    target = outside / "target.h5ad"
    with h5py.File(target, "w") as f:  # even an h5ad gseio wrote, when only linked, is not removed
        f.create_group("uns").create_group("gseio")
    (out / "linked.h5ad").symlink_to(target)
    with h5py.File(out / "theirs.h5ad", "w") as f:  # an h5ad of someone else's
        f.create_dataset("X", data=np.arange(3))
    (out / "folder.h5ad").mkdir()
    (out / "folder.h5ad" / "inside").write_text("in a folder named like an h5ad\n")
    files = [p for p in (*out.rglob("*"), *outside.glob("*")) if p.is_file() and not p.is_symlink()]
    return {str(p): p.read_bytes() for p in files if p.parent != out or p.name in {"notes.txt", "theirs.h5ad"}}


@pytest.mark.parametrize("publish", ["swap", "file by file"])
def test_a_tampered_report_deletes_nothing_that_gseio_did_not_write(small_series, tmp_path, monkeypatch, publish):
    outside = tmp_path / "around"
    outside.mkdir()
    out = outside / "out"
    runner = CliRunner()
    assert runner.invoke(main, ["build", str(small_series), "-o", str(out), "-q"]).exit_code == 0
    kept = _plant(out, outside)
    report = json.loads((out / "build_report.json").read_text())
    names = ["..", ".", "", "notes.txt", "downloaded_data", "../x", str(outside / "canary.txt"), "linked.h5ad",
             "theirs.h5ad", "folder.h5ad", "downloaded_data/GSE7_RAW.tar", "../out"]  # fmt: skip
    report["outputs"] += [{"file": name, "bytes": 1} for name in names]
    (out / "build_report.json").write_text(json.dumps(report))
    target = "."
    if publish == "swap":
        target = str(out)
    else:
        monkeypatch.chdir(out)  # OUTDIR is the current folder: published file by file
    result = runner.invoke(main, ["build", str(small_series), "-o", target, "-q", "--overwrite", "--name", "new"])
    assert result.exit_code == 0, result.output
    for path, data in kept.items():
        assert Path(path).read_bytes() == data, path
    assert (out / "linked.h5ad").is_symlink()
    assert (outside / "target.h5ad").is_file()
    # the previous build's own h5ad (GSE7_RAW.h5ad) is gone: gseio wrote it
    users = ["notes.txt", "downloaded_data", "linked.h5ad", "theirs.h5ad", "folder.h5ad"]
    assert sorted(p.name for p in out.iterdir()) == sorted([*RAW_FILES, "build_report.json", "new.h5ad", *users])
    assert sorted(p.name for p in outside.iterdir()) == ["canary.txt", "out", "target.h5ad", "x"]


# --- item 3: --name is a plain file name --------------------------------------------------------------


BAD_NAMES = ["../escape", "sub/name", "back\\slash", "..", ".", ".hidden", "nul\0byte", "tab\tname", "line\nbreak",
             "bell\x07", "", "x" * 300]  # fmt: skip


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_name_that_is_not_a_plain_file_name_is_a_usage_error(small_series, tmp_path, name):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["build", str(small_series), "-o", str(out), "--name", name])
    assert result.exit_code == 2, result.output
    assert "Invalid value for --name" in result.output
    assert "cannot name the h5ad" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written, not even OUTDIR


def test_a_plain_name_lands_inside_outdir(small_series, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["build", str(small_series), "-o", str(out), "--name", "my name.v2", "-q"])
    assert result.exit_code == 0, result.output
    assert (out / "my name.v2.h5ad").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# --- item 14: one build at a time ----------------------------------------------------------------------


HOLD_LOCK = """
import sys
from pathlib import Path
from gseio._outdir import outdir_lock
with outdir_lock(Path(sys.argv[1])) as path:
    print(path, flush=True)
    sys.stdin.readline()
"""


def test_a_second_build_into_a_locked_outdir_fails_at_once(small_series, tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(out)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env)  # fmt: skip
    try:
        lock = Path(holder.stdout.readline().strip())
        assert lock == tmp_path / ".out.gseio-lock"  # beside OUTDIR, never among the outputs
        line = _one_line_error(_gseio("build", str(small_series), "-o", str(out), "-q"))
        assert line == (f"error: {out}: another gseio build (pid {holder.pid}) is writing {out}; wait for it to "
                        "finish, or choose another output folder (-o)")  # fmt: skip
        assert not out.exists() or list(out.iterdir()) == []
    finally:
        holder.communicate("\n", timeout=60)
    assert not lock.exists()  # released and removed
    assert _gseio("build", str(small_series), "-o", str(out), "-q").returncode == 0


def test_two_real_builds_at_once_one_waits_for_nothing_and_fails(series, tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    first = subprocess.Popen([sys.executable, "-m", "gseio", "build", str(series), "-o", str(out), "-q",
                              "--no-resume"], stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    lock = tmp_path / ".out.gseio-lock"
    try:
        while first.poll() is None and not (lock.exists() and lock.read_text().strip() == str(first.pid)):
            time.sleep(0.005)
        assert first.poll() is None, "the first build ended before it could be observed holding the lock"
        first.send_signal(signal.SIGSTOP)  # holding the lock, mid-build
        second = _gseio("build", str(series), "-o", str(out), "-q", "--no-resume")
        assert f"another gseio build (pid {first.pid}) is writing {out}" in _one_line_error(second)
    finally:
        first.send_signal(signal.SIGCONT)
    assert first.wait(timeout=600) == 0, first.stderr.read()
    assert json.loads((out / "build_report.json").read_text())["conservation"]["ok"]
    assert not lock.exists()


# --- item 12: a rebuild keeps OUTDIR's mode, owner, group and ACLs ----------------------------------------

_UNDEFINED = 0xFFFFFFFF


def _acl(*entries: tuple[int, int, int]) -> bytes:
    """A POSIX ACL as Linux stores it in ``system.posix_acl_*`` (version 2, then tag, perm, id entries)."""
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *entry) for entry in entries)


def test_a_rebuild_keeps_the_folder_mode_group_setgid_and_acls(small_series, tmp_path):
    out = tmp_path / "out"
    runner = CliRunner()
    assert runner.invoke(main, ["build", str(small_series), "-o", str(out), "-q"]).exit_code == 0
    if os.geteuid() == 0:
        os.chown(out, 4321, 1234)  # root gives the folder away, as on a shared server
    os.chmod(out, 0o2770)
    acl = _acl((0x01, 7, _UNDEFINED), (0x04, 7, _UNDEFINED), (0x08, 5, 4242), (0x10, 7, _UNDEFINED),
               (0x20, 0, _UNDEFINED))  # user::rwx group::rwx group:4242:r-x mask::rwx other::---  # fmt: skip
    try:
        os.setxattr(out, "system.posix_acl_default", acl)
        acls = True
    except OSError:  # no ACL support on this file system: the rest still holds
        acls = False
    before = os.stat(out)
    result = runner.invoke(main, ["build", str(small_series), "-o", str(out), "-q", "--overwrite"])
    assert result.exit_code == 0, result.output
    after = os.stat(out)
    assert after.st_ino != before.st_ino  # a new folder was swapped in
    assert stat.S_IMODE(after.st_mode) == 0o2770
    assert (after.st_uid, after.st_gid) == (before.st_uid, before.st_gid)
    if acls:
        assert os.getxattr(out, "system.posix_acl_default") == acl
    assert {os.stat(p).st_gid for p in out.iterdir()} == {before.st_gid}  # the setgid group, inherited


# --- item 14: 1e300 and errors naming the final paths -----------------------------------------------------


def test_huge_integral_counts_are_written_real_and_read_back_exactly(tmp_path):
    import anndata as ad
    from scipy import io as sio
    from scipy import sparse

    import gseio

    values = np.array([[1e300, 3.0, 2.0**53], [2.0**53 + 2, 0.0, 7.0]])
    adata = ad.AnnData(sparse.csr_matrix(values))
    gseio.write_template(adata, tmp_path / "big")
    matrix = tmp_path / "big" / "expressionMatrix_rawCounts.mtx"
    assert matrix.read_text().splitlines()[0] == "%%MatrixMarket matrix coordinate real general"
    np.testing.assert_array_equal(sio.mmread(matrix).toarray(), values)  # exactly, not within a tolerance
    edge = ad.AnnData(sparse.csr_matrix(np.array([[2.0**53, 3.0]])))  # still exact in a float64: integer
    gseio.write_template(edge, tmp_path / "edge")
    text = (tmp_path / "edge" / "expressionMatrix_rawCounts.mtx").read_text()
    assert text.splitlines()[0] == "%%MatrixMarket matrix coordinate integer general"
    assert text.splitlines()[-2:] == ["1 1 9007199254740992", "1 2 3"]


def test_a_count_of_1e300_builds(tmp_path):
    from scipy import io as sio

    src = tmp_path / "in"
    src.mkdir()
    (src / "GSM1_a.txt").write_text("G1\t1e300\nG2\t3\n")
    (src / "GSM2_b.txt").write_text("G1\t2\nG2\t5\n")
    result = CliRunner().invoke(main, ["build", str(src), "-o", str(tmp_path / "out"), "-q"])
    assert result.exit_code == 0, result.output
    X = sio.mmread(tmp_path / "out" / "expressionMatrix_rawCounts.mtx").toarray()
    np.testing.assert_array_equal(X, [[1e300, 3.0], [2.0, 5.0]])


def test_errors_while_writing_name_the_final_path_not_the_staging_folder(small_series, tmp_path, monkeypatch):
    import errno

    import gseio.export.template as template

    def full(path, header, values):
        if header == "genes":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        Path(path).write_text(header + "\n" + "\n".join(values) + "\n")

    monkeypatch.setattr(template, "_write_column", full)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["build", str(small_series), "-o", str(out), "-q"])
    assert result.exit_code == 1
    expected = "cannot be written: No space left on device; the disk is full: free some space or write the outputs"
    assert result.output == f"error: {out / 'genes_rawCounts.tsv'}: {expected} elsewhere (-o)\n"
    assert not (out / ".gseio-cache").exists()  # a full disk: the cache goes too
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # and the OUTDIR this build made
