"""LDAM margins and loss against Cao et al. 2019's formulas."""

import pytest
import torch
import torch.nn.functional as F

from lt_imbalance.losses import LDAMLoss, ldam_margins

COUNTS = [100, 10, 1]


def test_ldam_margins_and_loss():
    m = ldam_margins(COUNTS, max_margin=0.5)
    raw = [n**-0.25 for n in COUNTS]
    assert m.tolist() == pytest.approx([0.5 * r / max(raw) for r in raw])
    g = torch.Generator().manual_seed(0)
    logits, y = torch.randn(6, 3, generator=g), torch.tensor([0, 1, 2, 0, 0, 1])
    shifted = logits.clone()
    shifted[torch.arange(6), y] -= m[y]
    got = LDAMLoss(COUNTS, max_margin=0.5, scale=30.0)(logits, y)
    torch.testing.assert_close(got, F.cross_entropy(30 * shifted, y, reduction="none"), rtol=1e-5, atol=1e-5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="LDAM needs class_counts"):
        LDAMLoss(None)
    with pytest.raises(ValueError, match="scale must be > 0"):
        LDAMLoss(COUNTS, scale=0.0)
