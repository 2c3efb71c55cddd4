import pytest
import torch
import torch.nn.functional as F

from lt_imbalance import ImbalancedClassifier
from lt_imbalance.mixing import mix_batch


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
    model = ImbalancedClassifier("digits_cnn", class_counts=[5, 3, 1], in_channels=1, mixup_alpha=0.4).train()
    x, y = torch.randn(6, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2])
    seed = model._mixing_seed()
    out = model.forward_loss((x, y))
    mixed, perm, lam = mix_batch(x, 0.4, 0.0, seed)
    # forward_loss ran the network once in train mode (BatchNorm): compare in eval-free closed form
    logits = out["logits"].detach()
    expected = lam * F.cross_entropy(logits, y) + (1 - lam) * F.cross_entropy(logits, y[perm])
    assert out["loss_sup"].item() == pytest.approx(expected.item(), rel=1e-6)
    model.eval()
    plain = model.forward_loss((x, y))
    assert plain["loss"].item() == pytest.approx(F.cross_entropy(plain["logits"], y).item(), rel=1e-6)
