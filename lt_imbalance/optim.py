"""Optimiser and learning-rate schedule construction (plain PyTorch; no Lightning).

Schedule, per optimisation step s of S in total with W warm-up steps and floor ratio m:

- warm-up (s < W): lr(s) = lr * (s + 1) / W;
- ``cosine``: lr(s) = lr * (m + (1 - m) * (1 + cos(pi * (s - W) / (S - W))) / 2);
- ``constant``: lr(s) = lr.

The CIFAR-LT protocol (Cao et al. 2019) uses 5 linear warm-up epochs; the paper (section 4)
trains with SGD and a cosine schedule.
"""

from __future__ import annotations

import math
from typing import Iterable, Literal

import torch

OptimizerName = Literal["sgd", "adamw"]
ScheduleName = Literal["cosine", "constant"]


def lr_factor(step: int, warmup_steps: int, total_steps: int, schedule: ScheduleName = "cosine", min_ratio: float = 0.0) -> float:
    """Multiplier of the base learning rate at optimisation step ``step`` (formulas above)."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    if schedule != "cosine":
        raise ValueError(f"unknown lr_schedule {schedule!r}; choose 'cosine' or 'constant'")
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def build_optimizer(
    params: Iterable[torch.nn.Parameter],
    name: OptimizerName,
    lr: float,
    weight_decay: float,
    momentum: float = 0.9,
    nesterov: bool = False,
) -> torch.optim.Optimizer:
    """SGD (with momentum / Nesterov) or AdamW."""
    if lr <= 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; choose 'sgd' or 'adamw'")
