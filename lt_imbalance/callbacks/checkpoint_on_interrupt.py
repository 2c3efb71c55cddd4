"""A resumable ``last.ckpt`` when ``fit`` is stopped by Ctrl-C or SIGTERM.

Lightning stops a run on ``KeyboardInterrupt`` (Ctrl-C, SIGINT) and on SIGTERM (a scheduler's
stop, ``kill``) by calling every callback's ``on_exception``; this one then saves the trainer's
state where the run's checkpoint callback keeps ``last.ckpt`` and says where, so that
``lt-imbalance fit ... --resume true`` continues from it. The training order is a function of
(seed, epoch) and the data modules skip the batches an interrupted epoch already trained on, so
the resumed run continues where this one stopped.
"""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import SIGTERMException


class CheckpointOnInterrupt(pl.Callback):
    """Saves ``last.ckpt`` when ``fit`` is interrupted (module docstring); nothing without a
    checkpoint callback (``enable_checkpointing=False``).

    Examples:
        >>> trainer = pl.Trainer(callbacks=[CheckpointOnInterrupt()])  # doctest: +SKIP
    """

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        checkpoint = trainer.checkpoint_callback
        if not isinstance(exception, (KeyboardInterrupt, SIGTERMException)) or trainer.state.fn != TrainerFn.FITTING:
            return
        if not isinstance(checkpoint, ModelCheckpoint) or not checkpoint.dirpath:
            return
        path = Path(checkpoint.dirpath) / f"{checkpoint.CHECKPOINT_NAME_LAST}{checkpoint.FILE_EXTENSION}"
        trainer.save_checkpoint(path)
        cause = "Ctrl-C" if isinstance(exception, KeyboardInterrupt) else "SIGTERM"
        rank_zero_info(
            f"fit stopped by {cause} in epoch {trainer.current_epoch} (step {trainer.global_step}): saved {path}; "
            "the same command with --resume true continues from it"
        )
