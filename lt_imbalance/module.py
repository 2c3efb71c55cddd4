"""ImbalancedClassifier: backbone + linear head trained with cross-entropy, evaluated per class.

Extension surface (what subclasses and callbacks rely on):

- ``per_sample_loss(logits, targets) -> Tensor[B]`` and ``compute_loss(logits, targets, batch)``:
  override either to change the loss without copying the class;
- ``training_step`` / ``shared_step``: the usual Lightning hooks, small enough to override;
- ``class_counts`` (training images per class) and ``num_classes``;
- ``results[stage]``: after each validation / test epoch, ``{"metrics", "per_class_acc",
  "confusion"}`` for callbacks (plots, tables).

Metrics (see :mod:`lt_imbalance.metrics`) are logged as ``train/...``, ``val/...``, ``test/...``.
"""

from __future__ import annotations

from typing import Any, Sequence

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.classification import MulticlassConfusionMatrix

from lt_imbalance.metrics import metrics_from_confusion, per_class_accuracy
from lt_imbalance.models.backbones import build_backbone, feature_dim
from lt_imbalance.optim import OptimizerName, ScheduleName, build_optimizer, lr_factor

STAGES = ("train", "val", "test")


class ImbalancedClassifier(pl.LightningModule):
    """Long-tailed image classifier.

    Args:
        backbone: a name of :data:`lt_imbalance.models.backbones.BACKBONES` or any ``nn.Module``
            (e.g. by ``class_path`` in YAML) with an integer ``out_features`` attribute.
        backbone_kwargs: extra arguments for a backbone given by name (e.g. ``{width: 2}``).
        class_counts: training images per class; linked from the data module by the CLI.
        num_classes: optional; must agree with ``class_counts`` when both are given.
        in_channels: input channels; linked from the data module by the CLI.
        label_smoothing: uniform label smoothing epsilon of the cross-entropy.
        optimizer: ``sgd`` or ``adamw``; lr, momentum, nesterov, weight_decay as usual.
        lr_schedule: ``cosine`` or ``constant``, stepped every optimisation step.
        warmup_epochs: linear warm-up length in epochs (may be fractional).
        min_lr_ratio: floor of the cosine schedule as a fraction of lr.
    """

    def __init__(
        self,
        backbone: str | nn.Module = "resnet32",
        backbone_kwargs: dict[str, Any] | None = None,
        class_counts: Sequence[int] | None = None,
        num_classes: int | None = None,
        in_channels: int = 3,
        label_smoothing: float = 0.0,
        optimizer: OptimizerName = "sgd",
        lr: float = 0.1,
        momentum: float = 0.9,
        nesterov: bool = False,
        weight_decay: float = 2e-4,
        lr_schedule: ScheduleName = "cosine",
        warmup_epochs: float = 0.0,
        min_lr_ratio: float = 0.0,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["backbone"] if isinstance(backbone, nn.Module) else None)
        self.class_counts = [int(n) for n in class_counts] if class_counts is not None else None
        self.num_classes = self._resolve_num_classes(num_classes, self.class_counts)
        if not 0 <= label_smoothing < 1:
            raise ValueError(f"label_smoothing must lie in [0, 1), got {label_smoothing}")
        if isinstance(backbone, str):
            backbone = build_backbone(backbone, in_channels=in_channels, **(backbone_kwargs or {}))
        elif backbone_kwargs:
            raise ValueError("backbone_kwargs only apply to a backbone given by name; put them in its init_args")
        self.backbone = backbone
        self.head = nn.Linear(feature_dim(backbone), self.num_classes)
        self.confusion = nn.ModuleDict({f"{s}_cm": MulticlassConfusionMatrix(self.num_classes) for s in STAGES})
        self.results: dict[str, dict[str, Any]] = {}

    @staticmethod
    def _resolve_num_classes(num_classes: int | None, class_counts: list[int] | None) -> int:
        if class_counts is not None:
            empty = [c for c, n in enumerate(class_counts) if n <= 0]
            if empty:
                raise ValueError(f"classes {empty} have no training samples; every class needs at least one.")
            if num_classes is not None and num_classes != len(class_counts):
                raise ValueError(
                    f"model.num_classes={num_classes} disagrees with the data, which has {len(class_counts)} "
                    "classes; remove model.num_classes (it is taken from the data) or fix it."
                )
            return len(class_counts)
        if num_classes is None or num_classes < 2:
            raise ValueError("give class_counts (linked from the data by the CLI) or num_classes >= 2")
        return num_classes

    # ---- model ----------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    # ---- loss: override these to change the objective -------------------------------------
    def per_sample_loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Cross-entropy with uniform label smoothing, one value per sample."""
        return F.cross_entropy(logits, targets, reduction="none", label_smoothing=self.hparams.label_smoothing)

    def compute_loss(self, logits: torch.Tensor, targets: torch.Tensor, batch: Any = None) -> torch.Tensor:
        """The training objective of a batch: the mean of :meth:`per_sample_loss`."""
        return self.per_sample_loss(logits, targets).mean()

    # ---- steps ----------------------------------------------------------------------------
    def shared_step(self, batch: Any, stage: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward, loss and confusion-matrix update of one batch; returns ``(loss, logits)``."""
        x, y = batch[0], batch[1]
        logits = self(x)
        loss = self.compute_loss(logits, y, batch)
        self.confusion[f"{stage}_cm"].update(logits.detach().argmax(1), y)
        on_step = stage == "train"
        self.log(f"{stage}/loss", loss, on_step=on_step, on_epoch=True, prog_bar=on_step, batch_size=len(y), sync_dist=not on_step)
        return loss, logits

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self.shared_step(batch, "train")[0]

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.shared_step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self.shared_step(batch, "test")

    def _end_epoch(self, stage: str) -> None:
        confusion = self.confusion[f"{stage}_cm"].compute()
        self.confusion[f"{stage}_cm"].reset()
        metrics = metrics_from_confusion(confusion, self.class_counts)
        self.results[stage] = {"metrics": metrics, "per_class_acc": per_class_accuracy(confusion).tolist(), "confusion": confusion.cpu()}
        self.log_dict({f"{stage}/{k}": v for k, v in metrics.items() if k != "balanced_acc"})
        self.log(f"{stage}/balanced_acc", metrics["balanced_acc"], prog_bar=stage == "val")

    def on_train_epoch_end(self) -> None:
        self._end_epoch("train")

    def on_validation_epoch_end(self) -> None:
        self._end_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._end_epoch("test")

    # ---- optimisation ---------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        optimizer = build_optimizer(self.parameters(), hp.optimizer, hp.lr, hp.weight_decay, hp.momentum, hp.nesterov)
        total = int(self.trainer.estimated_stepping_batches)
        epochs = self.trainer.max_epochs if self.trainer.max_epochs and self.trainer.max_epochs > 0 else 1
        warmup = int(round(hp.warmup_epochs * total / epochs))
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: lr_factor(s, warmup, total, hp.lr_schedule, hp.min_lr_ratio)
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
