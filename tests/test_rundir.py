"""The run directory: refused before training when it cannot be written or is nearly full; never overwritten."""

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from lt_imbalance.commands.lightning_cli import build_cli
from lt_imbalance.rundir import hpc_checkpoint, next_free

ROOT = Path(__file__).resolve().parents[1]


def test_unwritable_or_full_run_directory_fails_before_training(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError, match="cannot write to the run directory .*a_file/run.*set trainer.default_root_dir"):
        build_cli(["fit", "--config", "configs/digits_lt_erm.yaml", "--trainer.default_root_dir", str(blocker / "run")])
    monkeypatch.setattr(shutil, "disk_usage", lambda path: SimpleNamespace(total=10 * 2**30, used=10 * 2**30 - 2**20, free=2**20))
    with pytest.raises(OSError, match="only 1 MiB free at .*free some space"):
        build_cli(["fit", "--config", "configs/digits_lt_erm.yaml", "--trainer.default_root_dir", str(tmp_path / "run")])
    assert not list((tmp_path / "run").rglob("*.ckpt"))  # nothing trained


def test_next_free_and_hpc_checkpoint(tmp_path):
    (tmp_path / "config.yaml").write_text("x")
    assert next_free(tmp_path / "config.yaml").name == "config_resume_1.yaml"
    assert hpc_checkpoint(tmp_path) is None
    for n in (1, 2, 10):
        (tmp_path / f"hpc_ckpt_{n}.ckpt").write_text("x")
    assert hpc_checkpoint(tmp_path).name == "hpc_ckpt_10.ckpt"  # the largest number, as Lightning picks it
