"""Label-smoothing schedule: scales the loss's (class-conditional) eps each epoch.

At the start of epoch e (0-based), with ramp length R epochs (default: max_epochs):

- ``constant``: s(e) = 1;
- ``linear``:   s(e) = min(1, e / R)                       (0 at the first epoch, 1 from epoch R on);
- ``cosine``:   s(e) = (1 - cos(pi * min(1, e / R))) / 2   (slow start, slow finish).

The loss smooths class c with eps_c * s(e) (``pl_module.criterion.smoothing_scale``; every loss
of :mod:`lt_imbalance.losses` has it). The scale is a function of the epoch alone, so a resumed run
gets it back from the restored epoch.
"""

from __future__ import annotations

import math
from typing import Literal

import lightning.pytorch as pl

from lt_imbalance.contracts import HasCriterion, SmoothedLoss, require
from lt_imbalance.errors import BadValue

Schedule = Literal["constant", "linear", "cosine"]


def smoothing_scale(schedule: Schedule, epoch: int, ramp_epochs: int) -> float:
    """s(e) above."""
    if schedule == "constant":
        return 1.0
    progress = min(1.0, epoch / ramp_epochs) if ramp_epochs > 0 else 1.0
    if schedule == "linear":
        return progress
    if schedule == "cosine":
        return 0.5 * (1 - math.cos(math.pi * progress))
    raise BadValue(f"unknown label-smoothing schedule {schedule!r}; choose constant, linear or cosine")


class LabelSmoothingSchedule(pl.Callback):
    """Sets ``pl_module.criterion.smoothing_scale`` = s(epoch) at the start of every training epoch.

    Args:
        schedule: ``constant``, ``linear`` or ``cosine``.
        ramp_epochs: R; ``None`` uses ``trainer.max_epochs``.
    """

    def __init__(self, schedule: Schedule = "linear", ramp_epochs: int | None = None):
        smoothing_scale(schedule, 0, 1)  # validates the name
        self.schedule, self.ramp_epochs = schedule, ramp_epochs

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        require(pl_module, HasCriterion, "LabelSmoothingSchedule", "ImbalancedClassifier")
        require(pl_module.criterion, SmoothedLoss, "LabelSmoothingSchedule", "every loss of lt_imbalance.losses (a CrossEntropy subclass)")

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        ramp = self.ramp_epochs if self.ramp_epochs is not None else max(1, trainer.max_epochs or 1)
        pl_module.criterion.smoothing_scale = smoothing_scale(self.schedule, trainer.current_epoch, ramp)
        pl_module.log("train/smoothing_scale", pl_module.criterion.smoothing_scale, on_step=False, on_epoch=True)
