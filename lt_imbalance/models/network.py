"""The plain PyTorch classifier: backbone features, then the head's logits.

:class:`~lt_imbalance.module.ImbalancedClassifier` wraps it for Lightning; on its own it is an
ordinary ``nn.Module`` for a plain training loop, inference or export.
"""

from __future__ import annotations

import torch
from torch import nn


class ClassifierNetwork(nn.Module):
    """``forward(x) = head(backbone(x))``; :meth:`features` gives the backbone's output.

    Args:
        backbone: feature extractor (``out_features`` wide).
        head: map from features to class logits.

    Examples:
        >>> from lt_imbalance.models import build_backbone, build_head
        >>> backbone = build_backbone("digits_cnn", (1, 8, 8))
        >>> net = ClassifierNetwork(backbone, build_head("linear", backbone.out_features, 10))
        >>> net(torch.zeros(2, 1, 8, 8)).shape
        torch.Size([2, 10])
    """

    def __init__(self, backbone: nn.Module, head: nn.Module):
        super().__init__()
        self.backbone, self.head = backbone, head

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))
