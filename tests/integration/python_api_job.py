"""A run from Python, without the command: ``python python_api_job.py ROOT [KILL_AT_STEP] [--resume]``.
Used by ``test_python_api.py``: the module's own run defaults write the results table, the run
metadata and ``last.ckpt``, and resuming from that ``last.ckpt`` continues exactly."""

import sys
from functools import partial
from pathlib import Path

import lightning.pytorch as pl
import torch

from lt_imbalance import ImbalancedClassifier
from lt_imbalance.callbacks import SAM
from lt_imbalance.data import DigitsLT
from lt_imbalance.losses import CrossEntropy
from lt_imbalance.rundir import newest_last_checkpoint


def main(root: str, kill_at: int | None, resume: bool) -> None:
    pl.seed_everything(0)
    data = DigitsLT(batch_size=32, imbalance_ratio=10, val_fraction=0.2)
    model = ImbalancedClassifier(
        backbone="digits_cnn",
        loss=partial(CrossEntropy, label_smoothing_tail=0.1),
        optimizer=lambda params: torch.optim.SGD(params, lr=0.05, momentum=0.9, weight_decay=5e-4),
        class_counts=data.class_counts,
        input_shape=data.input_shape,
    )
    callbacks = [SAM(rho=0.05, gamma=1.0)]
    if kill_at is not None:
        from ddp_job import KillAtStep

        callbacks.append(KillAtStep(kill_at))
    trainer = pl.Trainer(
        max_epochs=3, deterministic=True, default_root_dir=root, callbacks=callbacks, enable_progress_bar=False, enable_model_summary=False
    )
    ckpt = newest_last_checkpoint(root) if resume else None
    trainer.fit(model, datamodule=data, ckpt_path=str(ckpt) if ckpt else None)
    trainer.test(model, datamodule=data)
    print("LOG_DIR", Path(trainer.log_dir))


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--resume"]
    main(args[0], int(args[1]) if len(args) > 1 else None, "--resume" in sys.argv)
