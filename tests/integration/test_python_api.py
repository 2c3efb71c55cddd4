"""A run from Python (``Trainer().fit(ImbalancedClassifier(...), datamodule=...)``) gets the module's
run defaults: results tables, ``run_metadata.json``, a resumable ``last.ckpt``, and after SIGKILL it
resumes to exactly the weights of an uninterrupted run, as the command does."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import lt_imbalance.module  # noqa: F401  (registers the checkpoint's settings classes for weights_only loading)

pytestmark = pytest.mark.slow  # a whole-product scenario: `make test-slow`

ROOT = Path(__file__).resolve().parents[2]
JOB = Path(__file__).resolve().parent / "python_api_job.py"


def _run(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'tests' / 'integration'}:{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.run([sys.executable, str(JOB), str(root), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.long_running
def test_python_api_run_writes_the_run_files_and_resumes_exactly_after_sigkill(tmp_path):
    whole = _run(tmp_path / "a")
    assert whole.returncode == 0, whole.stderr[-3000:]
    log_dir = Path(whole.stdout.split("LOG_DIR ")[1].split()[0])
    for name in ("results_test.md", "results_val.md", "run_metadata.json", "checkpoints/last.ckpt", "figures/test_per_class.png"):
        assert (log_dir / name).is_file(), name
    assert json.loads((log_dir / "run_metadata.json").read_text())["stages"] == ["fit", "test"]
    killed = _run(tmp_path / "b", "22")  # 13 steps an epoch: killed in epoch 1, last.ckpt is epoch 0's end
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert torch.load(next((tmp_path / "b").rglob("last.ckpt")), weights_only=True)["global_step"] == 13
    resumed = _run(tmp_path / "b", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a = torch.load(max((tmp_path / "a").rglob("last.ckpt"), key=os.path.getmtime), weights_only=True)
    b = torch.load(max((tmp_path / "b").rglob("last.ckpt"), key=os.path.getmtime), weights_only=True)
    assert a["global_step"] == b["global_step"] == 39
    for name, value in a["state_dict"].items():  # tensors exactly; the outputs owner's record equal
        if isinstance(value, torch.Tensor):
            torch.testing.assert_close(b["state_dict"][name], value, rtol=0, atol=0, msg=name)
        else:
            assert b["state_dict"][name] == value, name
