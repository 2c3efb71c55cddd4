"""Why imbalance hurts, per class: overfitting gaps and logit margins (Shwartz-Ziv et al. 2023, section 3).

The paper's explanation is that minority classes are overfit, and that small batches,
augmentation, label smoothing and SAM-A regularise against it. Two callbacks make that visible:

- :class:`OverfittingMonitor`: after every validation, per class c, the loss and accuracy on a
  fixed un-augmented subset of the *training* split and on the validation split, and the gaps
  gap_acc_c = train_acc_c - val_acc_c, gap_loss_c = val_loss_c - train_loss_c (cross-entropy),
  logged as ``overfit/...``, drawn against class frequency, and summarised in the results table
  (mean gap over all classes and over the few-shot classes).
- :class:`MarginStatistics`: the logit margin of a sample, z_y - max_{k != y} z_k
  (:func:`lt_imbalance.metrics.logit_margins`), per class on the training subset and the
  validation split (and the test set after ``test``), drawn as box plots ordered by class size.
  SAM-A and CC-LS are meant to widen the minority classes' margins.
"""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from lightning.pytorch.loggers import TensorBoardLogger  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402

from lt_imbalance.metrics import logit_margins, per_class_mean, shot_groups  # noqa: E402


@torch.no_grad()
def evaluate(trainer: pl.Trainer, pl_module: pl.LightningModule, dataset: Dataset, batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logits, targets)`` of ``dataset`` in eval mode, batches normalised by the data module."""
    dm = trainer.datamodule
    was_training = pl_module.training
    pl_module.eval()
    logits, targets = [], []
    try:
        for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
            batch = tuple(t.to(pl_module.device) for t in batch)
            if dm is not None:
                batch = dm.on_after_batch_transfer(batch, 0)
            logits.append(pl_module(batch[0]).float().cpu())
            targets.append(batch[1].cpu())
    finally:
        pl_module.train(was_training)
    return torch.cat(logits), torch.cat(targets)


def _log_figure(trainer: pl.Trainer, log_dir: str | None, fig, tag: str, filename: str) -> None:
    """Rank 0 only; ``log_dir`` is read by every rank beforehand (``trainer.log_dir`` is a collective)."""
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.experiment.add_figure(tag, fig, global_step=trainer.global_step, close=False)
    if log_dir:
        out = Path(log_dir) / "figures"
        out.mkdir(parents=True, exist_ok=True)
        fig.savefig(out / filename, dpi=90)
    plt.close(fig)


class _DiagnosticCallback(pl.Callback):
    def __init__(self, max_per_class: int = 100, every_n_epochs: int = 1, seed: int = 0):
        self.max_per_class, self.every_n_epochs, self.seed = max_per_class, every_n_epochs, seed
        self._train_subset: Dataset | None = None

    def _due(self, trainer: pl.Trainer) -> bool:
        return not trainer.sanity_checking and (trainer.current_epoch + 1) % self.every_n_epochs == 0

    def _splits(self, trainer: pl.Trainer) -> dict[str, Dataset]:
        dm = trainer.datamodule
        if dm is None or not hasattr(dm, "train_eval_dataset"):
            raise TypeError(f"{type(self).__name__} needs a data module with train_eval_dataset() (every LongTailedDataModule has it)")
        if self._train_subset is None:
            self._train_subset = dm.train_eval_dataset(self.max_per_class, self.seed)
        return {"train": self._train_subset, "val": dm.val_set}


class OverfittingMonitor(_DiagnosticCallback):
    """Per-class train / validation loss and accuracy and their gaps (module docstring).

    Args:
        max_per_class: size cap of the fixed training subset per class.
        every_n_epochs: how often to measure.
        seed: seed of the fixed subset.
    """

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._due(trainer) or pl_module.class_counts is None:
            return
        stats = {}
        for split, dataset in self._splits(trainer).items():
            logits, y = evaluate(trainer, pl_module, dataset)
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
        per_class = {}
        for c in range(pl_module.num_classes):
            for name, value in (("train_acc", stats["train"]["acc"][c]), ("val_acc", stats["val"]["acc"][c]), ("gap_acc", gap_acc[c]), ("gap_loss", gap_loss[c])):
                if not torch.isnan(value):
                    per_class[f"overfit/{name}/class_{c}"] = value.item()
        self.last = {"stats": stats, "gap_acc": gap_acc, "gap_loss": gap_loss, "summary": summary}
        if "val" in pl_module.results:
            pl_module.results["val"]["metrics"].update(summary)
        log_dir = trainer.log_dir
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.log_metrics({**{f"overfit/{k}": v for k, v in summary.items()}, **per_class}, step=trainer.global_step)
            _log_figure(trainer, log_dir, self._figure(pl_module.class_counts, gap_acc, gap_loss, trainer.current_epoch), "overfit/gap_vs_frequency", "overfit_gap.png")

    @staticmethod
    def _figure(counts, gap_acc, gap_loss, epoch):
        fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
        a.scatter(counts, 100 * gap_acc.numpy(), s=16)
        a.set_ylabel("train - val accuracy (points)")
        b.scatter(counts, gap_loss.numpy(), s=16, color="tab:red")
        b.set_ylabel("val - train cross-entropy")
        for ax in (a, b):
            ax.set_xscale("log")
            ax.set_xlabel("training images of the class (log scale)")
            ax.axhline(0, color="grey", lw=0.8)
            ax.grid(alpha=0.3)
        fig.suptitle(f"overfitting gap per class, epoch {epoch}")
        fig.tight_layout()
        return fig


class MarginStatistics(_DiagnosticCallback):
    """Per-class logit-margin distributions on the training subset, validation and test (module docstring)."""

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._due(trainer):
            self._report(trainer, pl_module, self._splits(trainer))

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._report(trainer, pl_module, {"test": trainer.datamodule.test_set})

    def _report(self, trainer: pl.Trainer, pl_module: pl.LightningModule, splits: dict[str, Dataset]) -> None:
        if pl_module.class_counts is None:
            return
        self.last = {}
        for split, dataset in splits.items():
            logits, y = evaluate(trainer, pl_module, dataset)
            margins = logit_margins(logits, y)
            self.last[split] = [margins[y == c] for c in range(pl_module.num_classes)]
        log_dir = trainer.log_dir
        if not trainer.is_global_zero:
            return
        medians = {
            f"margin/{split}_median/class_{c}": m.median().item() for split, per in self.last.items() for c, m in enumerate(per) if len(m)
        }
        for logger in trainer.loggers:
            logger.log_metrics(medians, step=trainer.global_step)
        _log_figure(trainer, log_dir, self._figure(pl_module.class_counts, self.last), "margin/per_class", f"margins_{'_'.join(splits)}.png")

    @staticmethod
    def _figure(counts, per_split):
        order = sorted(range(len(counts)), key=lambda c: -counts[c])
        fig, axes = plt.subplots(1, len(per_split), figsize=(6 * len(per_split), 4), squeeze=False)
        for ax, (split, per) in zip(axes[0], per_split.items()):
            ax.boxplot([per[c].numpy() for c in order], showfliers=False)
            ax.set_xticks(range(1, len(order) + 1), [str(counts[c]) for c in order], rotation=90, fontsize=7)
            ax.axhline(0, color="grey", lw=0.8)
            ax.set_xlabel("classes by training-image count")
            ax.set_ylabel("logit margin z_y - max_{k != y} z_k")
            ax.set_title(split)
        fig.tight_layout()
        return fig
