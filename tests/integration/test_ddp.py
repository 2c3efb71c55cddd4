"""Two-process DDP on CPU (gloo): SAM-A keeps ranks identical; Joint-SSL negatives come from both ranks.

The jobs run in a fresh interpreter (tests/ddp_job.py) with one thread per process."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from lightly.loss import NTXentLoss

pytestmark = pytest.mark.slow  # a whole-product scenario: `make test-slow`

JOB = Path(__file__).with_name("ddp_job.py")


def _run(*args: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, str(JOB), *args], check=True, env=env, timeout=300, capture_output=True)


def test_sam_a_ranks_hold_identical_weights_and_ascent_option_matters(tmp_path):
    results = {}
    for ascent in ("global", "per_replica"):
        out = tmp_path / ascent
        out.mkdir()
        _run("sam", ascent, str(out))
        rank0, rank1 = (torch.load(out / f"rank{r}.pt") for r in range(2))
        for name in rank0:
            torch.testing.assert_close(rank0[name], rank1[name], rtol=0, atol=0, msg=f"{ascent}: {name}")
        results[ascent] = rank0
    assert any(not torch.allclose(results["global"][n], results["per_replica"][n]) for n in results["global"])


def test_joint_ssl_negatives_are_gathered_from_both_ranks(tmp_path):
    _run("ntxent", str(tmp_path))
    z1, z2 = torch.load(tmp_path / "z.pt")
    distributed = torch.load(tmp_path / "loss0.pt")
    whole_batch = NTXentLoss(temperature=0.5)(z1, z2)
    local_only = (NTXentLoss(temperature=0.5)(z1[:4], z2[:4]) + NTXentLoss(temperature=0.5)(z1[4:], z2[4:])) / 2
    assert distributed.item() == pytest.approx(whole_batch.item(), rel=1e-5)
    assert abs(distributed.item() - local_only.item()) > 1e-3
