"""What the error of a NaN / infinite training loss says: what, where, what to resume from, how to go on."""

from __future__ import annotations

import torch


def nonfinite_message(trainer, loss: torch.Tensor, batch_idx: int) -> str:
    """What went wrong, where, what to resume from, and how to go on."""
    where = f"global step {trainer.global_step} (epoch {trainer.current_epoch}, batch {batch_idx})" if trainer else f"batch {batch_idx}"
    ckpt = None
    if trainer is not None and trainer.checkpoint_callback is not None:
        ckpt = trainer.checkpoint_callback.last_model_path or trainer.checkpoint_callback.best_model_path
    return (
        f"the training loss is {loss.detach().float().item()} at {where}; last good checkpoint: "
        f"{ckpt or 'none written yet'}. Lower the learning rate or check the data for NaN/inf; "
        "model.init_args.on_nonfinite_loss: skip skips such steps instead."
    )
