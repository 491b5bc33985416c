"""The docs build without warnings, the tutorial runs, and CI runs the README's test command."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from conftest import REPO


def test_tutorial_notebook_runs(tmp_path, monkeypatch):
    notebook = json.loads((REPO / "tutorials" / "01_quickstart.ipynb").read_text())
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    cells = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert len(cells) >= 6
    for cell in cells:
        exec(compile("".join(cell["source"]), "<tutorial>", "exec"), namespace)
    assert namespace["work"].obs["leiden"].nunique() >= 2
    assert (tmp_path / "tutorial_demo" / "processed_data" / "expressionMatrix_rawCounts.mtx").is_file()


def test_sphinx_builds_without_warnings(tmp_path):
    out = tmp_path / "html"
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(REPO / "docs"), str(out)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (out / "generated" / "gseio.read_gse_dir.html").is_file()
    assert "gseio build" in (out / "cli.html").read_text()


def _code_blocks(markdown: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)\n```", markdown, flags=re.S)


def test_readme_has_two_setup_commands_and_ci_runs_the_test_one():
    readme = (REPO / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = _code_blocks(quick_start)
    assert len(blocks) == 2
    demo, tests = blocks
    assert "gseio demo" in demo
    assert "gseio build" in demo
    assert "pytest" in tests
    assert tests in Path(REPO / ".ci" / "run").read_text().splitlines()


def test_readme_python_example_is_valid_python():
    readme = (REPO / "README.md").read_text()
    example = re.search(r"```python\n(.*?)\n```", readme, flags=re.S).group(1)
    compile(example, "<README>", "exec")
    assert len(example.splitlines()) <= 12
