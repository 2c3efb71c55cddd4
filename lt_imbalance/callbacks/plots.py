"""Per-class figures: accuracy against training-class count (log scale) and the row-normalised
confusion matrix, logged to TensorBoard and saved under ``<log_dir>/figures``."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import lightning.pytorch as pl
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from lightning.pytorch.loggers import TensorBoardLogger  # noqa: E402


def per_class_figure(per_class_acc: Sequence[float], class_counts: Sequence[int], confusion: torch.Tensor, title: str):
    """A two-panel matplotlib figure: accuracy vs. training count, and the confusion matrix (rows sum to 1)."""
    fig, (ax_acc, ax_cm) = plt.subplots(1, 2, figsize=(11, 4.5))
    ax_acc.scatter(class_counts, [100 * a for a in per_class_acc], s=18)
    ax_acc.set_xscale("log")
    ax_acc.set_xlabel("training images of the class (log scale)")
    ax_acc.set_ylabel("class accuracy (%)")
    ax_acc.set_ylim(-3, 103)
    ax_acc.grid(alpha=0.3)
    rows = confusion.double()
    rows = rows / rows.sum(1, keepdim=True).clamp_min(1)
    im = ax_cm.imshow(rows.numpy(), vmin=0, vmax=1, cmap="Blues")
    ax_cm.set_xlabel("predicted class")
    ax_cm.set_ylabel("true class (sorted as in the data)")
    fig.colorbar(im, ax=ax_cm, fraction=0.046)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


class PerClassPlots(pl.Callback):
    """Draws :func:`per_class_figure` after every ``every_n_epochs``-th validation and after testing."""

    def __init__(self, every_n_epochs: int = 1):
        self.every_n_epochs = every_n_epochs

    def _draw(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        log_dir = trainer.log_dir  # a collective under DDP: every rank must ask
        result = getattr(pl_module, "results", {}).get(stage)
        if result is None or pl_module.class_counts is None or not trainer.is_global_zero:
            return
        fig = per_class_figure(
            result["per_class_acc"], pl_module.class_counts, result["confusion"], f"{stage}, epoch {trainer.current_epoch}"
        )
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_figure(f"{stage}/per_class", fig, global_step=trainer.global_step, close=False)
        if log_dir:
            out = Path(log_dir) / "figures"
            out.mkdir(parents=True, exist_ok=True)
            fig.savefig(out / f"{stage}_per_class.png", dpi=90)
        plt.close(fig)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking and (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            self._draw(trainer, pl_module, "val")

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._draw(trainer, pl_module, "test")
