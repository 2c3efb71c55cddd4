"""Class-conditional label smoothing (CC-LS) against its closed form."""

import pytest
import torch
import torch.nn.functional as F

from lt_imbalance.losses import CrossEntropy, cc_label_smoothing_loss, class_smoothing


def test_eps_per_class_closed_form():
    counts = [1000, 100, 10]
    eps = class_smoothing(counts, eps_head=0.05, eps_tail=0.25)
    # t = log(1000/n) / log(1000/10) = 0, 0.5, 1
    assert eps.tolist() == pytest.approx([0.05, 0.15, 0.25])
    eps_sq = class_smoothing(counts, 0.05, 0.25, power=2)
    assert eps_sq.tolist() == pytest.approx([0.05, 0.05 + 0.2 * 0.25, 0.25])
    assert class_smoothing([7, 7, 7], 0.1, 0.3).tolist() == pytest.approx([0.1] * 3)  # balanced data: all t_c = 0


def test_loss_closed_form_per_sample():
    g = torch.Generator().manual_seed(0)
    logits, targets = torch.randn(5, 3, generator=g), torch.tensor([0, 1, 2, 2, 1])
    eps = torch.tensor([0.0, 0.1, 0.4])
    got = cc_label_smoothing_loss(logits, targets, eps)
    log_p = F.log_softmax(logits, 1)
    for i, y in enumerate(targets.tolist()):
        target = torch.full((3,), eps[y].item() / 3)
        target[y] += 1 - eps[y].item()
        assert got[i].item() == pytest.approx(-(target * log_p[i]).sum().item(), rel=1e-6)


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
def test_equal_head_and_tail_eps_is_torch_label_smoothing(eps):
    g = torch.Generator().manual_seed(1)
    logits, targets = torch.randn(16, 10, generator=g), torch.randint(0, 10, (16,), generator=g)
    per_class = class_smoothing([500, 50, 5, 3, 2, 100, 9, 8, 7, 6], eps, eps)
    assert cc_label_smoothing_loss(logits, targets, per_class).mean().item() == pytest.approx(
        F.cross_entropy(logits, targets, label_smoothing=eps).item(), rel=1e-6
    )
    without_counts = CrossEntropy(None, label_smoothing=eps)  # uniform smoothing needs no class counts
    assert without_counts(logits, targets).mean().item() == pytest.approx(
        F.cross_entropy(logits, targets, label_smoothing=eps).item(), rel=1e-6
    )


def test_loss_module_uses_class_conditional_eps_and_scale():
    loss = CrossEntropy([100, 10, 1], label_smoothing=0.0, label_smoothing_tail=0.2)
    logits, y = torch.randn(4, 3), torch.tensor([0, 1, 2, 2])
    eps = torch.tensor([0.0, 0.1, 0.2])
    torch.testing.assert_close(loss(logits, y), cc_label_smoothing_loss(logits, y, eps))
    loss.smoothing_scale = 0.5
    torch.testing.assert_close(loss(logits, y), cc_label_smoothing_loss(logits, y, eps * 0.5))
    loss.smoothing_scale = 0.0
    torch.testing.assert_close(loss(logits, y), F.cross_entropy(logits, y, reduction="none"))


def test_bad_eps_is_refused():
    with pytest.raises(ValueError, match="eps_tail must lie in"):
        class_smoothing([3, 1], 0.1, 1.0)
    with pytest.raises(ValueError, match="needs class_counts"):
        CrossEntropy(None, label_smoothing_tail=0.2)
