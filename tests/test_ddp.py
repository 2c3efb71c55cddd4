"""Two-process DDP on CPU (gloo): SAM-A keeps ranks identical; Joint-SSL negatives come from both ranks."""

import os
import socket

import lightning.pytorch as pl
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from lightly.loss import NTXentLoss
from torch.utils.data import DataLoader, TensorDataset

from lt_imbalance import ImbalancedClassifier
from lt_imbalance.callbacks import SAM
from test_sam import COUNTS, TinyNet


class _DumpWeights(pl.Callback):
    def __init__(self, out_dir):
        self.out_dir = out_dir

    def on_train_end(self, trainer, pl_module):
        state = {n: p.detach().clone() for n, p in pl_module.named_parameters()}
        torch.save(state, os.path.join(self.out_dir, f"rank{trainer.global_rank}.pt"))


def _ddp_fit(out_dir, ascent):
    torch.manual_seed(0)
    model = ImbalancedClassifier(TinyNet(batchnorm=True), class_counts=COUNTS, lr=0.1, lr_schedule="constant")
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(24, 5, generator=g), torch.tensor([0, 0, 1, 2, 0, 1] * 4)
    trainer = pl.Trainer(
        accelerator="cpu", devices=2, strategy="ddp_fork", max_epochs=2, callbacks=[SAM(rho=0.5, ascent=ascent), _DumpWeights(out_dir)],
        logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
    )
    trainer.fit(model, train_dataloaders=DataLoader(TensorDataset(x, y), batch_size=6))
    return [torch.load(os.path.join(out_dir, f"rank{r}.pt")) for r in range(2)]


def test_sam_a_ranks_hold_identical_weights_and_ascent_option_matters(tmp_path):
    results = {}
    for ascent in ("global", "per_replica"):
        out = tmp_path / ascent
        out.mkdir()
        rank0, rank1 = _ddp_fit(str(out), ascent)
        for name in rank0:
            torch.testing.assert_close(rank0[name], rank1[name], rtol=0, atol=0, msg=f"{ascent}: {name}")
        results[ascent] = rank0
    assert any(not torch.allclose(results["global"][n], results["per_replica"][n]) for n in results["global"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ntxent_worker(rank, world, port, z1, z2, out_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        model = ImbalancedClassifier("digits_cnn", class_counts=[5, 5], in_channels=1, ssl_weight=1.0)
        n = len(z1) // world
        part = slice(rank * n, (rank + 1) * n)
        loss = model.ssl_loss(z1[part], z2[part]).detach()
        dist.all_reduce(loss)
        torch.save(loss / world, os.path.join(out_dir, f"loss{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_joint_ssl_negatives_are_gathered_from_both_ranks(tmp_path):
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(8, 16, generator=g), torch.randn(8, 16, generator=g)
    mp.start_processes(_ntxent_worker, args=(2, _free_port(), z1, z2, str(tmp_path)), nprocs=2, start_method="fork")
    distributed = torch.load(tmp_path / "loss0.pt")
    whole_batch = NTXentLoss(temperature=0.5)(z1, z2)
    local_only = (NTXentLoss(temperature=0.5)(z1[:4], z2[:4]) + NTXentLoss(temperature=0.5)(z1[4:], z2[4:])) / 2
    assert distributed.item() == pytest.approx(whole_batch.item(), rel=1e-5)
    assert abs(distributed.item() - local_only.item()) > 1e-3
