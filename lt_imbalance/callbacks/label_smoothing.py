"""Label-smoothing schedule: scales the module's (class-conditional) eps each epoch.

At the start of epoch e (0-based), with ramp length R epochs (default: max_epochs):

- ``constant``: s(e) = 1;
- ``linear``:   s(e) = min(1, e / R)                       (0 at the first epoch, 1 from epoch R on);
- ``cosine``:   s(e) = (1 - cos(pi * min(1, e / R))) / 2   (slow start, slow finish).

The module smooths class c with eps_c * s(e) (``pl_module.smoothing_scale``). The scale is a
function of the epoch alone, so a resumed run gets it back from the restored epoch.
"""

from __future__ import annotations

import math
from typing import Literal

import lightning.pytorch as pl

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
    raise ValueError(f"unknown label-smoothing schedule {schedule!r}; choose constant, linear or cosine")


class LabelSmoothingSchedule(pl.Callback):
    """Sets ``pl_module.smoothing_scale`` = s(epoch) at the start of every training epoch.

    Args:
        schedule: ``constant``, ``linear`` or ``cosine``.
        ramp_epochs: R; ``None`` uses ``trainer.max_epochs``.
    """

    def __init__(self, schedule: Schedule = "linear", ramp_epochs: int | None = None):
        smoothing_scale(schedule, 0, 1)  # validates the name
        self.schedule, self.ramp_epochs = schedule, ramp_epochs

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if not hasattr(pl_module, "smoothing_scale"):
            raise TypeError(f"LabelSmoothingSchedule needs {type(pl_module).__name__}.smoothing_scale (ImbalancedClassifier has it)")

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        ramp = self.ramp_epochs if self.ramp_epochs is not None else max(1, trainer.max_epochs or 1)
        pl_module.smoothing_scale = smoothing_scale(self.schedule, trainer.current_epoch, ramp)
        pl_module.log("train/smoothing_scale", pl_module.smoothing_scale, on_step=False, on_epoch=True)
