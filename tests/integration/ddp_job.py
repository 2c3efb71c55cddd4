"""Two-process DDP jobs on CPU (gloo), run by tests/integration/test_ddp.py in a fresh interpreter.

Forking a process whose OpenMP pool is already running (as a long pytest session's is) can
deadlock the children, so the tests start this script with subprocess instead of forking pytest.

    python tests/integration/ddp_job.py sam <global|per_replica> <out_dir>   # rank weights after SAM-A steps
    python tests/integration/ddp_job.py ntxent <out_dir>                     # NT-Xent with gathered negatives
"""

import os
import socket
import sys

import lightning.pytorch as pl
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from helpers import CONSTANT, COUNTS, TinyNet, sgd  # noqa: E402
from lt_imbalance import ImbalancedClassifier  # noqa: E402
from lt_imbalance.callbacks import SAM  # noqa: E402
from lt_imbalance.losses import JointSSL  # noqa: E402


class DumpWeights(pl.Callback):
    def __init__(self, out_dir):
        self.out_dir = out_dir

    def on_train_end(self, trainer, pl_module):
        state = {n: p.detach().clone() for n, p in pl_module.named_parameters()}
        torch.save(state, os.path.join(self.out_dir, f"rank{trainer.global_rank}.pt"))


def sam_job(ascent: str, out_dir: str) -> None:
    torch.manual_seed(0)
    model = ImbalancedClassifier(
        TinyNet(batchnorm=True), class_counts=COUNTS, optimizer=sgd(0.1, momentum=0.9, weight_decay=2e-4), lr_schedule=CONSTANT
    )
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(24, 5, generator=g), torch.tensor([0, 0, 1, 2, 0, 1] * 4)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp_fork",
        max_epochs=2,
        callbacks=[SAM(rho=0.5, ascent=ascent), DumpWeights(out_dir)],
        default_root_dir=out_dir,  # the module's run files (metadata, tables) go with the job's own output
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(model, train_dataloaders=DataLoader(TensorDataset(x, y), batch_size=6))


def _ntxent_worker(rank, world, port, z1, z2, out_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        model = ImbalancedClassifier("digits_cnn", class_counts=[5, 5], input_shape=(1, 8, 8), ssl=JointSSL(weight=1.0))
        n = len(z1) // world
        part = slice(rank * n, (rank + 1) * n)
        loss = model.ssl_objective.ntxent(z1[part], z2[part]).detach()
        dist.all_reduce(loss)
        torch.save(loss / world, os.path.join(out_dir, f"loss{rank}.pt"))
    finally:
        dist.destroy_process_group()


def ntxent_job(out_dir: str) -> None:
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(8, 16, generator=g), torch.randn(8, 16, generator=g)
    torch.save((z1, z2), os.path.join(out_dir, "z.pt"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.start_processes(_ntxent_worker, args=(2, port, z1, z2, out_dir), nprocs=2, start_method="fork")


if __name__ == "__main__":
    if sys.argv[1] == "sam":
        sam_job(sys.argv[2], sys.argv[3])
    else:
        ntxent_job(sys.argv[2])


class SaveRankWeights(pl.Callback):
    """For the CLI test: every rank saves its parameters to ``<out_dir>/rank<r>.pt`` when fitting ends."""

    def __init__(self, out_dir: str):
        self.out_dir = out_dir

    def on_fit_end(self, trainer, pl_module):
        state = {n: p.detach().cpu().clone() for n, p in pl_module.named_parameters()}
        state["split"] = (trainer.datamodule.split_hash, list(pl_module.class_counts))
        torch.save(state, os.path.join(self.out_dir, f"rank{trainer.global_rank}.pt"))


class SaveRankShard(pl.Callback):
    """For the streaming test: every rank saves the training indices its loader serves this epoch
    (and whether its dataset decodes files per access) to ``<out_dir>/shard<r>.pt``."""

    def __init__(self, out_dir: str):
        self.out_dir = out_dir

    def on_train_epoch_start(self, trainer, pl_module):
        loader = trainer.train_dataloader
        keys = [key[0] if isinstance(key, tuple) else key for key in loader.sampler]
        streamed = type(loader.dataset).__name__ == "ImageFileDataset"
        torch.save(
            {"indices": keys, "streamed": streamed, "size": len(loader.dataset)},
            os.path.join(self.out_dir, f"shard{trainer.global_rank}.pt"),
        )


class KillAtStep(pl.Callback):
    """For the resume test: SIGKILL this process once ``step`` optimisation steps are done."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step >= self.step:
            import signal

            os.kill(os.getpid(), signal.SIGKILL)
