"""The data-throughput script (scripts/data_throughput.py) in its tiny mode, so it cannot rot."""

import json
import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_data_throughput_runs_in_tiny_mode(tmp_path):
    runpy.run_path(str(ROOT / "scripts" / "data_throughput.py"))["main"](
        ["--tiny", "--gpu-decode", "--device", "cpu", "--out", str(tmp_path)]
    )
    figures = json.loads((tmp_path / "throughput.json").read_text())
    assert [r["workers"] for r in figures["rows"]] == [0]
    rates = ("train_images_per_s", "eval_images_per_s", "gpu_decode_train_images_per_s")
    assert all(r[rate] > 0 for r in figures["rows"] for rate in rates)
    assert "| loader workers |" in (tmp_path / "throughput.md").read_text()
    assert "with gpu_decode on CPU |" in (tmp_path / "throughput.md").read_text()
