"""Sending a figure to the run's loggers and its ``figures/`` folder (rank 0 only)."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.loggers import TensorBoardLogger
from matplotlib.figure import Figure

from lt_imbalance.plotting import save


def log_figure(trainer: pl.Trainer, log_dir: str | None, fig: Figure, tag: str, filename: str) -> None:
    """TensorBoard gets the figure under ``tag``; ``<log_dir>/figures/<filename>`` the file. Call on
    rank 0 only, with ``log_dir`` read by every rank beforehand (``trainer.log_dir`` is a collective)."""
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.experiment.add_figure(tag, fig, global_step=trainer.global_step, close=False)
    if log_dir:
        save(fig, Path(log_dir) / "figures" / filename)
