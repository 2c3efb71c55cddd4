"""Per-class figures: accuracy against training-class count (log scale) and the row-normalised
confusion matrix (:func:`lt_imbalance.plotting.per_class_figure`), logged to TensorBoard and
saved under ``<log_dir>/figures``."""

from __future__ import annotations

import lightning.pytorch as pl

from lt_imbalance.callbacks.run_files import WritesRunFiles, log_figure
from lt_imbalance.contracts import EvaluatedModule, require
from lt_imbalance.plotting import per_class_figure


class PerClassPlots(WritesRunFiles):
    """Draws the per-class figure after every ``every_n_epochs``-th validation and after testing."""

    def __init__(self, every_n_epochs: int = 1):
        self.every_n_epochs = every_n_epochs

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        require(pl_module, EvaluatedModule, "PerClassPlots", "ImbalancedClassifier")

    def _draw(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        log_dir = self.run_dir
        result = pl_module.evaluations.get(stage)
        if result is None or result.class_counts is None or not trainer.is_global_zero:
            return
        spec = getattr(pl_module, "input_spec", None)
        names = list(spec.class_names) if spec is not None else None
        fig = per_class_figure(result.per_class_acc, result.class_counts, result.confusion, f"{stage}, epoch {result.epoch}", names)
        log_figure(trainer, log_dir, fig, f"{stage}/per_class", f"{stage}_per_class.png")

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking and (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            self._draw(trainer, pl_module, "val")

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._draw(trainer, pl_module, "test")
