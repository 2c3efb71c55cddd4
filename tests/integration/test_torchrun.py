"""The full CLI under torchrun: 2 processes, DDP on CPU (gloo), a few steps of the tuned routine
(SAM-A, CC-LS, Joint-SSL) on digits-LT. Both ranks end with identical weights, and the test
metrics the DDP run reports (synchronised across ranks) equal a single-process test of its checkpoint."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow  # a whole-product scenario: `make test-slow`

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.long_running
def test_cli_under_torchrun_two_processes(tmp_path):
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": f"{ROOT / 'tests' / 'integration'}:{ROOT / 'tests'}:{os.environ.get('PYTHONPATH', '')}",
    }
    weights = tmp_path / "weights"
    weights.mkdir()
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [
        str(torchrun),
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "lt_imbalance",
        "fit",
        "--config",
        "configs/digits_lt.yaml",
        "--trainer.accelerator",
        "cpu",
        "--trainer.devices",
        "2",
        "--trainer.strategy",
        "ddp",  # SyncBatchNorm needs GPUs
        "--trainer.max_epochs",
        "1",
        "--trainer.limit_train_batches",
        "4",
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.default_root_dir",
        str(tmp_path / "run"),
        "--trainer.callbacks+=ddp_job.SaveRankWeights",
        f"--trainer.callbacks.out_dir={weights}",
    ]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    rank0, rank1 = (torch.load(weights / f"rank{r}.pt") for r in range(2))
    assert rank0.pop("split") == rank1.pop("split")  # the same long-tailed split and class counts on both ranks
    for name in rank0:
        torch.testing.assert_close(rank0[name], rank1[name], rtol=0, atol=0, msg=name)
    log_dir = next((tmp_path / "run").rglob("results_test.json")).parent
    ddp_metrics = json.loads((log_dir / "results_test.json").read_text())["metrics"]
    ckpt = next(log_dir.rglob("*.ckpt"))
    single = subprocess.run(
        [
            sys.executable,
            "-m",
            "lt_imbalance",
            "test",
            "--config",
            "configs/digits_lt.yaml",
            "--ckpt_path",
            str(ckpt),
            "--trainer.default_root_dir",
            str(tmp_path / "single"),
            "--trainer.enable_progress_bar",
            "false",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert single.returncode == 0, single.stderr[-3000:]
    single_metrics = json.loads(next((tmp_path / "single").rglob("results_test.json")).read_text())["metrics"]
    for key in ("acc", "balanced_acc", "macro_f1", "few_acc"):
        assert ddp_metrics[key] == pytest.approx(single_metrics[key], abs=1e-6), key
    meta = json.loads((log_dir / "run_metadata.json").read_text())
    assert meta["trainer"]["world_size"] == 2 and meta["data"]["batch_size"] == 32  # the global batch: 16 per rank


def test_streaming_file_data_under_torchrun_each_rank_reads_its_own_shard(tmp_path):
    """ImageNet-LT (fake tree) under DDP: images decoded per access, and the two ranks' training
    samplers split the epoch's draw into disjoint halves."""
    from fakes import write_fake_list_benchmark

    data = write_fake_list_benchmark(tmp_path / "imagenet", "imagenet")
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": f"{ROOT / 'tests' / 'integration'}:{ROOT / 'tests'}:{os.environ.get('PYTHONPATH', '')}",
    }
    shards = tmp_path / "shards"
    shards.mkdir()
    cmd = [
        str(Path(sys.executable).with_name("torchrun")), "--standalone", "--nproc_per_node", "2", "-m", "lt_imbalance", "fit",
        "--config", "configs/imagenet_lt/erm.yaml", "--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp",
        "--trainer.precision", "32-true", "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
        "--trainer.limit_test_batches", "1", "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(tmp_path / "run"),
        "--data.init_args.data_dir", str(data), "--data.init_args.num_classes", "6", "--data.init_args.image_size", "32",
        "--data.init_args.resize_size", "36", "--data.init_args.batch_size", "8", "--data.init_args.num_workers", "0",
        "--model.init_args.backbone", "resnet18", "--trainer.callbacks+=ddp_job.SaveRankShard", f"--trainer.callbacks.out_dir={shards}",
    ]  # fmt: skip
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    rank0, rank1 = (torch.load(shards / f"shard{r}.pt") for r in range(2))
    assert rank0["streamed"] and rank1["streamed"]  # decoded per access, nothing held in memory
    assert not set(rank0["indices"]) & set(rank1["indices"])  # disjoint shards ...
    assert len(rank0["indices"]) + len(rank1["indices"]) == rank0["size"]  # ... that together cover the epoch
