"""The optimiser and the learning-rate schedule (plain PyTorch).

The optimiser is injected (``model.init_args.optimizer``, any ``torch.optim`` class by
``class_path``); without one, SGD with lr 0.1, momentum 0.9 and weight decay 2e-4 (the CIFAR-LT
protocol of Cao et al. 2019). The schedule, per optimisation step s of S in total with W warm-up
steps and floor ratio m:

- warm-up (s < W): lr(s) = lr * (s + 1) / W;
- ``cosine``: lr(s) = lr * (m + (1 - m) * (1 + cos(pi * (s - W) / (S - W))) / 2);
- ``constant``: lr(s) = lr.

The paper (section 4) trains with SGD and a cosine schedule; the CIFAR-LT protocol uses 5 linear
warm-up epochs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import torch

from lt_imbalance.errors import BadValue

ScheduleName = Literal["cosine", "constant"]


def default_optimizer(params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """SGD, lr 0.1, momentum 0.9, weight decay 2e-4: the optimiser when none is configured."""
    return torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=2e-4)


def lr_factor(step: int, warmup_steps: int, total_steps: int, schedule: ScheduleName = "cosine", min_ratio: float = 0.0) -> float:
    """Multiplier of the base learning rate at optimisation step ``step`` (formulas above)."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    if schedule != "cosine":
        raise BadValue(f"unknown lr_schedule {schedule!r}; choose 'cosine' or 'constant'")
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


@dataclass
class LRSchedule:
    """The learning-rate schedule, stepped every optimisation step (module docstring).

    Args:
        name: ``cosine`` or ``constant``.
        warmup_epochs: linear warm-up length in epochs (may be fractional).
        min_lr_ratio: floor of the cosine schedule as a fraction of the base learning rate.
    """

    name: ScheduleName = "cosine"
    warmup_epochs: float = 0.0
    min_lr_ratio: float = 0.0

    def __post_init__(self):
        if self.name not in ("cosine", "constant"):
            raise BadValue(f"unknown lr_schedule {self.name!r}; choose 'cosine' or 'constant'")
        if self.warmup_epochs < 0 or not 0 <= self.min_lr_ratio <= 1:
            raise BadValue(f"lr_schedule needs warmup_epochs >= 0 and min_lr_ratio in [0, 1], got {self}")

    def scheduler(self, optimizer: torch.optim.Optimizer, total_steps: int, epochs: int) -> torch.optim.lr_scheduler.LambdaLR:
        """A per-step ``LambdaLR`` for ``total_steps`` optimisation steps over ``epochs`` epochs."""
        warmup = int(round(self.warmup_epochs * total_steps / max(1, epochs)))
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, warmup, total_steps, self.name, self.min_lr_ratio))
