"""MixUp / CutMix against their closed forms; the module's objective under mixing; SAM-A weights of mixed samples."""

import pytest
import torch
import torch.nn.functional as F

from lt_imbalance import ImbalancedClassifier
from lt_imbalance.training.batch_mixing import Mixing, mix_batch, mixed_sample_weights


def test_mixup_closed_form_and_determinism():
    x = torch.randn(6, 1, 8, 8)
    mixed, perm, lam = mix_batch(x, mixup_alpha=0.4, cutmix_alpha=0.0, seed=3)
    torch.testing.assert_close(mixed, lam * x + (1 - lam) * x[perm])
    again, perm2, lam2 = mix_batch(x, 0.4, 0.0, seed=3)
    assert torch.equal(again, mixed) and torch.equal(perm, perm2) and lam == lam2
    assert not torch.equal(mix_batch(x, 0.4, 0.0, seed=4)[0], mixed)


def test_cutmix_pastes_one_box_whose_area_sets_lambda():
    x = torch.zeros(4, 1, 16, 16)
    x += torch.arange(4.0).view(4, 1, 1, 1)  # image i is constant i
    for seed in range(20):
        mixed, perm, lam = mix_batch(x, 0.0, 1.0, seed=seed)
        for i in range(4):
            if perm[i] == i:
                continue
            pasted = (mixed[i] == perm[i].float()).float().mean().item()
            assert pasted == pytest.approx(1 - lam)


def test_module_loss_under_mixing_is_the_lambda_combination():
    torch.manual_seed(0)
    model = ImbalancedClassifier("digits_cnn", class_counts=[5, 3, 1], input_shape=(1, 8, 8), mixing=Mixing(mixup_alpha=0.4)).train()
    x, y = torch.randn(6, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2])
    draw = model.mix_draw(x)
    out = model.forward_loss((x, y))
    mixed, perm, lam = mix_batch(x, 0.4, 0.0, hash((torch.initial_seed(), 0, 0)) % 2**63)
    assert torch.equal(perm, draw.perm) and lam == draw.lam
    logits = out["logits"].detach()
    expected = lam * F.cross_entropy(logits, y) + (1 - lam) * F.cross_entropy(logits, y[perm])
    assert out["loss_sup"].item() == pytest.approx(expected.item(), rel=1e-6)
    model.eval()
    plain = model.forward_loss((x, y))
    assert plain["loss"].item() == pytest.approx(F.cross_entropy(plain["logits"], y).item(), rel=1e-6)


def test_mixed_samples_get_the_lambda_mix_of_their_class_weights():
    a = torch.tensor([1.0, 2.0, 8.0])
    y, perm = torch.tensor([0, 1, 2]), torch.tensor([2, 0, 1])
    got = mixed_sample_weights(a, y, perm, lam=0.75)
    assert got.tolist() == pytest.approx([0.75 * 1 + 0.25 * 8, 0.75 * 2 + 0.25 * 1, 0.75 * 8 + 0.25 * 2])
    torch.manual_seed(0)
    model = ImbalancedClassifier("digits_cnn", class_counts=[8, 4, 1], input_shape=(1, 8, 8), mixing=Mixing(cutmix_alpha=1.0)).train()
    x = torch.randn(3, 1, 8, 8)
    draw = model.mix_draw(x)
    expected = draw.lam * a[y] + (1 - draw.lam) * a[y[draw.perm]]
    torch.testing.assert_close(model.ascent_sample_weights((x, y), a), expected)
    torch.testing.assert_close(model.eval().ascent_sample_weights((x, y), a), a[y])  # no mixing outside training


def test_negative_alpha_is_refused():
    with pytest.raises(ValueError, match="mixing alphas must be >= 0"):
        Mixing(mixup_alpha=-1)
