"""Per-class overfitting gaps (Shwartz-Ziv et al. 2023, section 3: imbalance hurts through
overfitting of the minority classes, which small batches, augmentation, label smoothing and SAM-A
regularise against).

After every validation, per class c, the cross-entropy and accuracy on a fixed un-augmented subset
of the *training* split and on the validation split, and the gaps

    gap_acc_c  = train_acc_c - val_acc_c,      gap_loss_c = val_loss_c - train_loss_c,

logged as ``overfit/...``, drawn against class frequency, and published as a summary (mean gap over
all classes and over the few-shot classes) that the results table prints.
"""

from __future__ import annotations

import lightning.pytorch as pl
import torch
import torch.nn.functional as F

from lt_imbalance.callbacks.diagnostic_pass import DiagnosticCallback, evaluate
from lt_imbalance.callbacks.run_files import log_figure
from lt_imbalance.metrics import per_class_mean, shot_groups
from lt_imbalance.plotting import overfitting_figure


class OverfittingMonitor(DiagnosticCallback):
    """Per-class train / validation loss and accuracy and their gaps (module docstring). After each
    measurement, ``last`` holds the per-class statistics and :meth:`summary` the means. Arguments
    as :class:`~lt_imbalance.callbacks.diagnostic_pass.DiagnosticCallback`.
    """

    def summary(self, stage: str) -> dict[str, float]:
        """``gap_acc``, ``gap_loss`` and ``gap_acc_few`` of the latest measurement (for ``val``)."""
        return dict(self.last.get("summary", {})) if stage == "val" else {}

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.due(trainer) or pl_module.class_counts is None:
            return
        stats = {}
        for split, dataset in self.splits(trainer).items():
            logits, y = evaluate(pl_module, trainer.datamodule, dataset)
            stats[split] = {
                "loss": per_class_mean(F.cross_entropy(logits, y, reduction="none"), y, pl_module.num_classes),
                "acc": per_class_mean((logits.argmax(1) == y).float(), y, pl_module.num_classes),
            }
        gap_acc = stats["train"]["acc"] - stats["val"]["acc"]
        gap_loss = stats["val"]["loss"] - stats["train"]["loss"]
        few = shot_groups(pl_module.class_counts)["few"]
        summary = {"gap_acc": torch.nanmean(gap_acc).item(), "gap_loss": torch.nanmean(gap_loss).item()}
        if few:
            summary["gap_acc_few"] = torch.nanmean(gap_acc[few]).item()
        self.last = {"stats": stats, "gap_acc": gap_acc, "gap_loss": gap_loss, "summary": summary}
        log_dir = self.run_dir
        if not trainer.is_global_zero:
            return
        per_class = {}
        for c in range(pl_module.num_classes):
            for name, value in (
                ("train_acc", stats["train"]["acc"][c]),
                ("val_acc", stats["val"]["acc"][c]),
                ("gap_acc", gap_acc[c]),
                ("gap_loss", gap_loss[c]),
            ):
                if not torch.isnan(value):
                    per_class[f"overfit/{name}/class_{c}"] = value.item()
        for logger in trainer.loggers:
            logger.log_metrics({**{f"overfit/{k}": v for k, v in summary.items()}, **per_class}, step=trainer.global_step)
        fig = overfitting_figure(pl_module.class_counts, gap_acc, gap_loss, trainer.current_epoch)
        log_figure(trainer, log_dir, fig, "overfit/gap_vs_frequency", "overfit_gap.png")
