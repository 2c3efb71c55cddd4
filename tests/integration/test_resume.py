"""Exact resume: a run SIGKILLed mid-epoch and resumed with `--resume true` ends with the same
weights as an uninterrupted run (deterministic CPU mode; augmentation, shuffling, CC-LS and SAM-A on;
Joint-SSL off to keep the test short)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

pytestmark = pytest.mark.slow  # a whole-product scenario: `make test-slow`

ROOT = Path(__file__).resolve().parents[2]


def _config(tmp_path: Path, kill_at: int | None) -> Path:
    cfg = yaml.safe_load((ROOT / "configs" / "digits_lt.yaml").read_text())
    cfg["trainer"].update(max_epochs=3, deterministic=True, enable_progress_bar=False)
    cfg["model"]["init_args"]["ssl"] = {"weight": 0.0}
    cfg["trainer"]["callbacks"] = (
        cfg["trainer"]["callbacks"]
        + [
            {
                "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                "init_args": {"every_n_train_steps": 4, "save_last": True, "save_top_k": 0},
            },
        ]
        + ([{"class_path": "ddp_job.KillAtStep", "init_args": {"step": kill_at}}] if kill_at else [])
    )
    path = tmp_path / f"cfg_{kill_at}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _fit(config: Path, root: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'tests' / 'integration'}:{ROOT / 'tests'}:{os.environ.get('PYTHONPATH', '')}"}
    cmd = [
        sys.executable,
        "-m",
        "lt_imbalance",
        "fit",
        "--config",
        str(config),
        "--trainer.default_root_dir",
        str(root),
        "--test_after_fit",
        "false",
        *extra,
    ]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def _final_weights(root: Path) -> dict:
    newest = max(root.rglob("last.ckpt"), key=lambda p: p.stat().st_mtime)
    return torch.load(newest, weights_only=False)["state_dict"]


@pytest.mark.long_running
def test_sigkill_mid_epoch_then_resume_equals_uninterrupted(tmp_path):
    steps_per_epoch = 13  # 407 training images, batch 32
    uninterrupted = _fit(_config(tmp_path, None), tmp_path / "a")
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-2000:]
    killed = _fit(_config(tmp_path, 22), tmp_path / "b")
    assert killed.returncode == -9  # SIGKILL
    saved = torch.load(next((tmp_path / "b").rglob("last.ckpt")), weights_only=False)
    assert saved["global_step"] == 20 and saved["global_step"] % steps_per_epoch != 0  # mid-epoch (epoch 1, batch 7)
    resumed = _fit(_config(tmp_path, None), tmp_path / "b", "--resume", "true")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "Restored all states from the checkpoint" in resumed.stderr + resumed.stdout
    a, b = _final_weights(tmp_path / "a"), _final_weights(tmp_path / "b")
    for name, value in a.items():  # tensors exactly; the outputs owner's record equal
        if isinstance(value, torch.Tensor):
            torch.testing.assert_close(b[name], value, rtol=0, atol=0, msg=name)
        else:
            assert b[name] == value, name
