"""Per-class logit margins (Shwartz-Ziv et al. 2023, section 3): the margin of a sample is
z_y - max_{k != y} z_k (:func:`lt_imbalance.metrics.logit_margins`; negative when misclassified).
SAM-A and CC-LS are meant to widen the minority classes' margins."""

from __future__ import annotations

import lightning.pytorch as pl
from torch.utils.data import Dataset

from lt_imbalance.callbacks.diagnostic_pass import DiagnosticCallback, evaluate
from lt_imbalance.callbacks.run_files import log_figure
from lt_imbalance.metrics import logit_margins
from lt_imbalance.plotting import margins_figure


class MarginStatistics(DiagnosticCallback):
    """Per-class margin distributions on the fixed training subset and the validation split after
    each validation, and on the test set after ``test``: box plots ordered by class size and the
    per-class medians (``margin/{split}_median/class_c``). ``last`` holds the margins per split and
    class. Arguments as :class:`~lt_imbalance.callbacks.diagnostic_pass.DiagnosticCallback`.
    """

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.due(trainer):
            self._report(trainer, pl_module, self.splits(trainer))

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._report(trainer, pl_module, {"test": trainer.datamodule.test_set})

    def _report(self, trainer: pl.Trainer, pl_module: pl.LightningModule, splits: dict[str, Dataset]) -> None:
        if pl_module.class_counts is None:
            return
        self.last = {}
        for split, dataset in splits.items():
            logits, y = evaluate(pl_module, trainer.datamodule, dataset)
            margins = logit_margins(logits, y)
            self.last[split] = [margins[y == c] for c in range(pl_module.num_classes)]
        log_dir = self.run_dir
        if not trainer.is_global_zero:
            return
        medians = {
            f"margin/{split}_median/class_{c}": m.median().item() for split, per in self.last.items() for c, m in enumerate(per) if len(m)
        }
        for logger in trainer.loggers:
            logger.log_metrics(medians, step=trainer.global_step)
        fig = margins_figure(pl_module.class_counts, self.last)
        log_figure(trainer, log_dir, fig, "margin/per_class", f"margins_{'_'.join(splits)}.png")
