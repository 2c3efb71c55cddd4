"""The SLURM requeue path on CPU: SIGUSR1 to a running fit saves hpc_ckpt_1.ckpt and calls
`scontrol requeue <job id>`; the requeued job (same command) resumes from that checkpoint."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a whole-product scenario: `make test-slow`

ROOT = Path(__file__).resolve().parents[2]


def _slurm_env(tmp_path: Path) -> dict:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    scontrol = bin_dir / "scontrol"
    scontrol.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "scontrol_calls.txt"}\n')
    scontrol.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env.update(
        PATH=f"{bin_dir}:{env['PATH']}",
        OMP_NUM_THREADS="1",
        SLURM_JOB_ID="4242",
        SLURM_JOB_NAME="lt-imbalance-test",
        SLURM_NTASKS="1",
        SLURM_NTASKS_PER_NODE="1",
        SLURM_PROCID="0",
        SLURM_LOCALID="0",
        SLURM_NODEID="0",
        SLURM_NODELIST="localhost",
    )
    return env


def _fit(tmp_path: Path, env: dict, epochs: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "lt_imbalance", "fit", "--config", "configs/digits_lt_erm.yaml", "--trainer.max_epochs", str(epochs)]
    cmd += ["--trainer.default_root_dir", str(tmp_path / "run"), "--trainer.enable_progress_bar", "false", "--test_after_fit", "false"]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for(path: Path, proc: subprocess.Popen, seconds: float) -> None:
    deadline = time.time() + seconds
    while not path.exists():
        assert proc.poll() is None, proc.stdout.read()
        assert time.time() < deadline, f"{path} did not appear"
        time.sleep(0.2)


def test_sigusr1_saves_requeues_and_the_requeued_job_resumes(tmp_path):
    env = _slurm_env(tmp_path)
    first = _fit(tmp_path, env, epochs=500)
    try:
        log_dir = tmp_path / "run" / "lightning_logs" / "version_4242"  # under SLURM the log version is the job id
        _wait_for(log_dir / "run_metadata.json", first, 120)
        time.sleep(3)  # a few epochs in
        first.send_signal(signal.SIGUSR1)
        _wait_for(tmp_path / "scontrol_calls.txt", first, 60)
        checkpoint = tmp_path / "run" / "hpc_ckpt_1.ckpt"
        assert checkpoint.is_file()
        assert (tmp_path / "scontrol_calls.txt").read_text().split() == ["requeue", "4242"]
    finally:
        first.kill()  # SLURM ends the job after requeueing it
        first.wait()
    import torch

    saved_step = torch.load(checkpoint, weights_only=False)["global_step"]
    assert saved_step > 0
    second = _fit(tmp_path, env, epochs=1 + torch.load(checkpoint, weights_only=False)["epoch"] + 1)
    out, _ = second.communicate(timeout=300)
    assert second.returncode == 0, out
    assert f"Restored all states from the checkpoint at {checkpoint}" in out.replace("\n", "")
    # same log directory (same job id): the first run's files are kept, the resumed run's sit beside them
    assert (log_dir / "config.yaml").is_file() and (log_dir / "config_resume_1.yaml").is_file()
    assert json.loads((log_dir / "run_metadata_resume_1.json").read_text())["resumed_from"] == str(checkpoint)
