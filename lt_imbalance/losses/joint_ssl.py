"""Joint-SSL: an auxiliary SimCLR objective trained with the classifier (Shwartz-Ziv et al. 2023, section 5.4).

For a batch with two augmented views v1, v2 of every image, backbone f and projection head g:

    L = L_sup + lambda * NTXent(g(f(v1)), g(f(v2)))

NT-Xent (Chen et al. 2020) with temperature tau treats the two views of an image as the positive
pair and the other 2B - 2 views as negatives; under DDP the negatives are gathered from every
device (lightly's ``NTXentLoss(gather_distributed=True)``), so the gradient of this term is
all-reduced in the backward pass. The projection head is lightly's ``SimCLRProjectionHead``
(hidden width = feature width).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from lightly.loss import NTXentLoss
from lightly.models.modules import SimCLRProjectionHead
from torch import nn

from lt_imbalance.errors import BadValue


@dataclass
class JointSSL:
    """Settings of the Joint-SSL term.

    Args:
        weight: lambda; 0 switches Joint-SSL off (and the data module then yields no SSL views).
        temperature: NT-Xent temperature (0.5 as in the authors' SimCLR code).
        projection_dim: output width of the projection head.
    """

    weight: float = 0.0
    temperature: float = 0.5
    projection_dim: int = 128

    def __post_init__(self):
        if self.weight < 0:
            raise BadValue(f"ssl weight must be >= 0, got {self.weight}")
        if self.temperature <= 0:
            raise BadValue(f"ssl temperature must be > 0, got {self.temperature}")

    @property
    def enabled(self) -> bool:
        return self.weight > 0


class ContrastiveObjective(nn.Module):
    """The NT-Xent term on backbone features of two views: ``forward(h1 [B, D], h2 [B, D]) -> scalar``.

    Args:
        feature_dim: width D of the backbone features.
        settings: temperature and projection width (the weight is applied by the caller).

    Examples:
        >>> objective = ContrastiveObjective(16, JointSSL(weight=0.1))
        >>> objective(torch.randn(4, 16), torch.randn(4, 16)).shape
        torch.Size([])
    """

    def __init__(self, feature_dim: int, settings: JointSSL):
        super().__init__()
        self.projector = SimCLRProjectionHead(feature_dim, feature_dim, settings.projection_dim)
        self.ntxent = NTXentLoss(temperature=settings.temperature, gather_distributed=True)

    def forward(self, h1: torch.Tensor, h2: torch.Tensor) -> torch.Tensor:
        z1, z2 = self.projector(torch.cat([h1, h2])).chunk(2)
        return self.ntxent(z1, z2)
