"""Classifier heads: the map from backbone features to class logits (plain PyTorch).

- ``linear``: z = W f + b;
- ``cosine``: z_c = cos(angle(f, W_c)) = f.W_c / (|f| |W_c|), LDAM's normalised classifier
  (logits in [-1, 1]; LDAM scales them by s).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from lt_imbalance.errors import BadValue

HeadName = Literal["linear", "cosine"]


class CosineClassifier(nn.Module):
    """z_c = f.W_c / (|f| |W_c|).

    Args:
        in_features: feature width.
        num_classes: number of classes.

    Examples:
        >>> CosineClassifier(8, 3)(torch.randn(2, 8)).abs().max().item() <= 1 + 1e-6
        True
    """

    def __init__(self, in_features: int, num_classes: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, in_features).uniform_(-1, 1).renorm_(2, 0, 1e-5).mul_(1e5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=1) @ F.normalize(self.weight, dim=1).t()


def build_head(name: HeadName, in_features: int, num_classes: int) -> nn.Module:
    """The head called ``name`` for ``in_features``-wide features."""
    if name == "linear":
        return nn.Linear(in_features, num_classes)
    if name == "cosine":
        return CosineClassifier(in_features, num_classes)
    raise BadValue(f"unknown head {name!r}; choose linear or cosine")
