"""The GPU check (scripts/gpu_check.py) in its CPU mode, so that it cannot rot between GPU runs; and its
checks fail on a bad record."""

import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.long_running
def test_cpu_mode_runs_every_variant_and_passes(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # the other test worker has the second core
    proc = subprocess.run(
        [sys.executable, "scripts/gpu_check.py", "--cpu", "--out", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    table = (tmp_path / "gpu_check.md").read_text()
    for variant in ("eager fp32", "eager bf16-mixed", "compile bf16-mixed", "reduce-overhead bf16-mixed"):
        assert f"| {variant} | ok | all pass |" in table, table
    figures = json.loads((tmp_path / "gpu_check.json").read_text())
    assert not figures["failures"] and {(r["impl"], r["method"]) for r in figures["benchmark"]} == {
        ("hand", "sam_a_ssl"),
        ("framework", "sam_a_ssl"),
    }
    assert figures["tune"]["complete"] == 2 and "Tuner, 2 trials at once: ok, 2 complete" in table
    assert figures["data_pipeline"]["rows"][0]["gpu_decode_train_images_per_s"] > 0 and "with gpu_decode on CPU |" in table
    fit = figures["fits"][0]
    assert fit["sam_descent_passes"] == fit["sam_steps_expected"] == 4 and fit["batchnorm_updates"] == [2 * fit["steps"]]


def test_checks_fail_on_a_bad_record():
    fit_checks = runpy.run_path(str(ROOT / "scripts" / "gpu_check.py"))["fit_checks"]
    good = {
        "status": "ok", "losses_finite": True, "sam_descent_passes": 4, "sam_steps_expected": 4, "lr_max_relative_error": 0.0,
        "batchnorm_updates": [16], "batchnorm_expected": 16,
    }  # fmt: skip
    assert all(fit_checks(good).values())
    for change in (
        {"losses_finite": False},
        {"sam_descent_passes": 3},
        {"lr_max_relative_error": 0.01},
        {"batchnorm_updates": [24]},
        {"status": "exit 1"},
    ):
        assert not all(fit_checks({**good, **change}).values()), change
