"""Focal loss against Lin et al. 2017's closed form."""

import pytest
import torch
import torch.nn.functional as F

from lt_imbalance.losses import FocalLoss


def test_focal_loss_closed_form_and_gamma_zero_is_cross_entropy():
    g = torch.Generator().manual_seed(0)
    logits, y = torch.randn(6, 3, generator=g), torch.tensor([0, 1, 2, 0, 0, 1])
    p = F.softmax(logits, 1).gather(1, y[:, None]).squeeze(1)
    torch.testing.assert_close(FocalLoss([100, 10, 1], gamma=2.0)(logits, y), (1 - p) ** 2 * -torch.log(p), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(FocalLoss(None, gamma=0.0)(logits, y), F.cross_entropy(logits, y, reduction="none"))
    with pytest.raises(ValueError, match="gamma must be >= 0"):
        FocalLoss(None, gamma=-1.0)
