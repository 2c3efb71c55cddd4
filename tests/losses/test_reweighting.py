"""Class re-weighting (inverse, effective number) against hand computations, composed with any loss."""

import pytest
import torch
import torch.nn.functional as F

from lt_imbalance.losses import BalancedSoftmaxLoss, Reweighting, class_weights, log_prior, weighted_mean

COUNTS = [100, 10, 1]


def test_inverse_and_effective_number_weights():
    inv = class_weights(COUNTS, "inverse")
    raw = [1 / 100, 1 / 10, 1]
    assert inv.tolist() == pytest.approx([r * 3 / sum(raw) for r in raw])
    beta = 0.9
    eff = class_weights(COUNTS, "effective", beta)
    raw = [(1 - beta) / (1 - beta**n) for n in COUNTS]
    assert eff.tolist() == pytest.approx([r * 3 / sum(raw) for r in raw], rel=1e-6)
    assert class_weights(COUNTS, "none") is None


def test_weighted_mean_equals_torch_weighted_cross_entropy():
    g = torch.Generator().manual_seed(0)
    logits, y = torch.randn(6, 3, generator=g), torch.tensor([0, 1, 2, 0, 0, 1])
    w = class_weights(COUNTS, "inverse")
    got = weighted_mean(F.cross_entropy(logits, y, reduction="none"), y, w)
    assert got.item() == pytest.approx(F.cross_entropy(logits, y, weight=w).item(), rel=1e-6)


def test_weights_compose_with_a_smoothed_specialised_loss():
    g = torch.Generator().manual_seed(0)
    logits, y = torch.randn(6, 3, generator=g), torch.tensor([0, 1, 2, 0, 0, 1])
    loss = BalancedSoftmaxLoss(COUNTS, label_smoothing=0.1, label_smoothing_tail=0.1)
    per_sample = F.cross_entropy(logits + log_prior(COUNTS), y, reduction="none", label_smoothing=0.1)  # each sample's smoothed loss ...
    w = class_weights(COUNTS, "inverse")[y]  # ... weighted as a whole by its class weight
    # (torch's weight= would instead weight the smoothing term of class k by w_k)
    got = weighted_mean(loss(logits, y), y, class_weights(COUNTS, "inverse"))
    assert got.item() == pytest.approx(((w * per_sample).sum() / w.sum()).item(), rel=1e-5)


def test_settings_are_checked():
    with pytest.raises(ValueError, match="unknown class weighting 'cb'"):
        Reweighting(kind="cb")
    with pytest.raises(ValueError, match="start_epoch must be >= 0"):
        Reweighting(kind="inverse", start_epoch=-1)
    with pytest.raises(ValueError, match="inverse class re-weighting needs class_counts"):
        class_weights(None, "inverse")
