"""The only place that reads Lightning state beyond its documented hooks and properties.

Each function has a test (``tests/test_lightning_compat.py``) that fails loudly when a Lightning
release moves what it reads.
"""

from __future__ import annotations

import lightning.pytorch as pl


def attached_trainer(module: pl.LightningModule) -> pl.Trainer | None:
    """The trainer ``module`` is attached to, or ``None`` (``module.trainer`` raises then)."""
    try:
        return module.trainer
    except RuntimeError:
        return None


def batches_done_this_epoch(trainer: pl.Trainer) -> int:
    """Training batches of the current epoch already processed: nonzero only when a run resumed
    mid-epoch (Lightning restores the epoch loop's progress before the first batch is fetched).
    Read from the fit loop's batch progress, which Lightning keeps for exactly this purpose."""
    done = trainer.fit_loop.epoch_loop.batch_progress.current.ready
    return done if 0 < done < trainer.num_training_batches else 0
