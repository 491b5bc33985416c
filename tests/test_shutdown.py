"""A build that stops early exits cleanly: no thread is left running while the interpreter shuts down.

gseio imports anndata on a thread while the first units are parsed. A build stopped by its first
bad file used to exit while that thread was still importing C extensions, and about one run in
a hundred ended in a segmentation fault (exit status 139) instead of the error message.
"""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest


@pytest.fixture
def bad_first(tmp_path: Path) -> Path:
    folder = tmp_path / "GSE1_RAW"
    folder.mkdir()
    (folder / "GSM0_bad.txt").write_text("G1\t1\nG2\tabc\n")  # the first unit fails at once
    for i in range(1, 4):
        (folder / f"GSM{i}_ok.txt").write_text(f"G1\t{i}\nG2\t3\n")
    return folder


_PROBE = """
import sys, threading
import gseio
from gseio.errors import InvalidValueError
assert "anndata" not in sys.modules
try:
    gseio.read_gse_dir(sys.argv[1])
except InvalidValueError:
    pass
print(sorted(t.name for t in threading.enumerate()))
"""


def test_no_thread_outlives_a_failed_build(bad_first: Path) -> None:
    done = subprocess.run([sys.executable, "-c", _PROBE, str(bad_first)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['MainThread']"


@pytest.mark.slow
def test_repeated_failing_builds_always_exit_with_the_error(bad_first: Path, tmp_path: Path) -> None:
    def run(i: int) -> subprocess.CompletedProcess[str]:
        command = ["gseio", "build", str(bad_first), "-o", str(tmp_path / f"out{i}"), "-q"]
        return subprocess.run(command, capture_output=True, text=True)

    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(run, range(40)))
    codes = sorted({r.returncode for r in runs})
    assert codes == [1], [r.stderr[-300:] for r in runs if r.returncode != 1][:3]
    for r in runs:
        assert r.stderr.startswith("error: ")
        assert "GSM0_bad.txt: line 2 (gene 'G2'): count 'abc' is not a number" in r.stderr
        assert "Traceback" not in r.stderr
