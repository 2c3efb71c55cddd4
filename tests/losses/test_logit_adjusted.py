"""Logit adjustment / Balanced Softmax against the closed form of Ren et al. 2020."""

import pytest
import torch

from lt_imbalance.losses import BalancedSoftmaxLoss, LogitAdjustedLoss, log_prior

COUNTS = [100, 10, 1]


def _data():
    g = torch.Generator().manual_seed(0)
    return torch.randn(6, 3, generator=g), torch.tensor([0, 1, 2, 0, 0, 1])


def test_logit_adjusted_loss_is_balanced_softmax_at_tau_one():
    logits, y = _data()
    prior = torch.tensor(COUNTS, dtype=torch.float) / sum(COUNTS)
    # Balanced Softmax (Ren et al. 2020): p_y = n_y e^{z_y} / sum_k n_k e^{z_k}
    balanced = -torch.log(prior[y] * logits.exp().gather(1, y[:, None]).squeeze(1) / (prior * logits.exp()).sum(1))
    torch.testing.assert_close(LogitAdjustedLoss(COUNTS, tau=1.0)(logits, y), balanced, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(BalancedSoftmaxLoss(COUNTS)(logits, y), balanced, rtol=1e-5, atol=1e-6)
    assert log_prior(COUNTS).tolist() == pytest.approx(torch.log(prior).tolist())


def test_tau_scales_the_adjustment():
    logits, y = _data()
    half = LogitAdjustedLoss(COUNTS, tau=0.5)(logits, y)
    expected = torch.nn.functional.cross_entropy(logits + 0.5 * log_prior(COUNTS), y, reduction="none")
    torch.testing.assert_close(half, expected)


def test_needs_class_counts():
    with pytest.raises(ValueError, match="logit-adjusted loss .* needs class_counts"):
        LogitAdjustedLoss(None)
