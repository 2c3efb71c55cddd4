"""Class re-weighting of per-sample losses, and its deferred form DRW (Cao et al. 2019).

Notation: C classes, n_c training images of class c, per-sample losses l_i with labels y_i.

- **inverse** frequency: w_c = (1 / n_c) * C / sum_k (1 / n_k) (mean weight 1);
- **effective** number (Cui et al. 2019): E_c = (1 - beta^{n_c}) / (1 - beta),
  w_c = (1 / E_c) * C / sum_k (1 / E_k);
- the batch loss is the weighted mean L = sum_i w_{y_i} l_i / sum_i w_{y_i} (what
  ``F.cross_entropy(weight=w)`` computes for plain cross-entropy), or the plain mean before
  ``start_epoch`` (DRW: deferred re-weighting, e.g. from 80% of training on).

Re-weighting composes with any per-sample loss of :mod:`lt_imbalance.losses`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from lt_imbalance.errors import BadValue
from lt_imbalance.losses.class_counts import counts_tensor

WeightingKind = Literal["none", "inverse", "effective"]


def class_weights(class_counts: Sequence[int], kind: WeightingKind, beta: float = 0.9999) -> torch.Tensor | None:
    """w_c of the module docstring (``None`` for ``kind="none"``), normalised to mean 1."""
    if kind == "none":
        return None
    counts = counts_tensor(class_counts, f"{kind} class re-weighting")
    if kind == "inverse":
        raw = 1.0 / counts
    elif kind == "effective":
        if not 0 <= beta < 1:
            raise BadValue(f"effective-number beta must lie in [0, 1), got {beta}")
        raw = (1 - beta) / (1 - torch.pow(beta, counts))
    else:
        raise BadValue(f"unknown class weighting {kind!r}; choose none, inverse or effective")
    return (raw * len(counts) / raw.sum()).float()


def weighted_mean(losses: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """sum_i w_{y_i} l_i / sum_i w_{y_i} (the plain mean without weights)."""
    if weights is None:
        return losses.mean()
    w = weights.to(losses.device)[targets]
    return (w * losses).sum() / w.sum().clamp_min(1e-12)


@dataclass
class Reweighting:
    """How the per-sample losses of a batch are averaged (module docstring).

    Args:
        kind: ``none`` (plain mean), ``inverse`` or ``effective``.
        beta: beta of the effective number.
        start_epoch: the first epoch with weights (> 0: deferred re-weighting, DRW).
    """

    kind: WeightingKind = "none"
    beta: float = 0.9999
    start_epoch: int = 0

    def __post_init__(self):
        if self.kind not in ("none", "inverse", "effective"):
            raise BadValue(f"unknown class weighting {self.kind!r}; choose none, inverse or effective")
        if self.start_epoch < 0:
            raise BadValue(f"re-weighting start_epoch must be >= 0, got {self.start_epoch}")
