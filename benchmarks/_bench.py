"""Shared by the benchmark scripts: run each method in a fresh subprocess, keep the medians, print ratios."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path


def measure(script: str, method: str, folder: Path) -> dict:
    """Run ``script --run method folder`` in a fresh interpreter; its JSON result plus its peak RSS."""
    proc = subprocess.Popen([sys.executable, script, "--run", method, str(folder)], stdout=subprocess.PIPE)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)  # the child's own peak, not the parent's
    if status != 0:
        raise SystemExit(f"{method} failed")
    result = json.loads(out)
    result["peak_rss_mb"] = usage.ru_maxrss / 1024
    return result


def measure_all(script: str, folder: Path, repeats: dict[str, int]) -> dict[str, dict]:
    """Each method ``repeats[method]`` times: median seconds, largest peak RSS, first result."""
    rows = {}
    for method, n in repeats.items():
        runs = [measure(script, method, folder) for _ in range(n)]
        rows[method] = {
            "seconds": statistics.median(r["seconds"] for r in runs),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
            "result": runs[0],
        }
        print(f"  measured {method}: {rows[method]['seconds']:.2f} s", flush=True)
    return rows


def print_table(rows: dict[str, dict], *, baseline: str, floor: str, baseline_label: str) -> None:
    """Seconds, ratio to the baseline method, ratio to the floor, peak RSS: one line per method."""
    ratio = f"x faster than {baseline_label}"
    print(f"\n{'method':<18}{'seconds':>9}{ratio:>{len(ratio) + 2}}{'x the isal floor':>18}{'peak RSS MB':>13}")
    base, low = rows[baseline]["seconds"], rows[floor]["seconds"]
    for method, row in rows.items():
        s = row["seconds"]
        print(f"{method:<18}{s:>9.2f}{base / s:>{len(ratio) + 2}.1f}{s / low:>18.2f}{row['peak_rss_mb']:>13.0f}")


def same_result(rows: dict[str, dict], methods: Sequence[str], keys: Sequence[str]) -> None:
    """Stop when two methods disagree on what they built (a benchmark of a wrong result means nothing)."""
    first = rows[methods[0]]["result"]
    for method in methods[1:]:
        other = rows[method]["result"]
        if any(first[k] != other[k] for k in keys):
            raise SystemExit(f"methods disagree: {methods[0]} {first}, {method} {other}")
