"""The benchmark script (scripts/benchmark.py) in its seconds-long tiny mode, so it cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a whole-product scenario: `make test-slow`

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.long_running
def test_benchmark_runs_in_tiny_mode(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "scripts/benchmark.py", "--tiny", "--methods", "erm", "--batch-sizes", "8", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    cells = {(r["impl"], r["method"]) for r in result["records"]}
    assert cells == {(i, m) for i in ("hand", "framework") for m in ("erm",)}  # sam_a_ssl cells: tests/test_gpu_check.py
    assert all(r["images_per_s"] > 0 and r["peak_mib"] > 0 for r in result["records"])
    table = out.with_suffix(".md").read_text()
    assert "framework / hand" in table and "CPU" in table and "| erm | 8 |" in table
