"""Focal loss (Lin et al. 2017): l = (1 - p_y)^gamma * CE, with p_y the softmax probability of
the true class. With label smoothing, the cross-entropy term uses the smoothed target."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from lt_imbalance.errors import BadValue
from lt_imbalance.losses.cross_entropy import CrossEntropy


def focal_factor(logits: torch.Tensor, targets: torch.Tensor, gamma: float) -> torch.Tensor:
    """(1 - p_y)^gamma per sample."""
    p_y = F.softmax(logits.float(), dim=1).gather(1, targets[:, None]).squeeze(1)
    return (1 - p_y).clamp_min(0).pow(gamma)


class FocalLoss(CrossEntropy):
    """(1 - p_y)^gamma times the (smoothed) cross-entropy of each sample.

    Args:
        class_counts: training images per class (only needed for class-conditional smoothing).
        gamma: focusing parameter; 0 gives the cross-entropy.
        **smoothing: label-smoothing arguments of :class:`CrossEntropy`.

    Examples:
        >>> loss = FocalLoss(None, gamma=2.0)
        >>> round(loss(torch.zeros(1, 2), torch.tensor([0])).item(), 4)  # 0.5^2 * log 2
        0.1733
    """

    def __init__(self, class_counts: Sequence[int] | None = None, gamma: float = 2.0, **smoothing):
        super().__init__(class_counts, **smoothing)
        if gamma < 0:
            raise BadValue(f"focal gamma must be >= 0, got {gamma}")
        self.gamma = gamma

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return focal_factor(logits, targets, self.gamma) * super().forward(logits, targets)
