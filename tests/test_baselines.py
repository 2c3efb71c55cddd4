"""Specialised baselines against hand computations: re-weighting, DRW, LDAM, logit adjustment /
Balanced Softmax (training and post-hoc), focal loss, and the class-balanced sampler."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lightning.fabric.utilities.distributed import DistributedSamplerWrapper

from lt_imbalance import ImbalancedClassifier
from lt_imbalance.data import DigitsLT
from lt_imbalance.data.samplers import EpochSampler
from lt_imbalance.losses import class_weights, ldam_margins, log_prior

COUNTS = [100, 10, 1]


def _model(**kw):
    torch.manual_seed(0)
    return ImbalancedClassifier("digits_cnn", class_counts=COUNTS, in_channels=1, **kw)


def _data():
    g = torch.Generator().manual_seed(0)
    return torch.randn(6, 3, generator=g), torch.tensor([0, 1, 2, 0, 0, 1])


def test_inverse_and_effective_number_weights():
    inv = class_weights(COUNTS, "inverse")
    raw = [1 / 100, 1 / 10, 1]
    assert inv.tolist() == pytest.approx([r * 3 / sum(raw) for r in raw])
    beta = 0.9
    eff = class_weights(COUNTS, "effective", beta)
    raw = [(1 - beta) / (1 - beta**n) for n in COUNTS]
    assert eff.tolist() == pytest.approx([r * 3 / sum(raw) for r in raw], rel=1e-6)
    assert class_weights(COUNTS, "none") is None


def test_weighted_loss_equals_torch_weighted_cross_entropy():
    logits, y = _data()
    model = _model(class_weighting="inverse")
    expected = F.cross_entropy(logits, y, weight=class_weights(COUNTS, "inverse"))
    assert model.compute_loss(logits, y).item() == pytest.approx(expected.item(), rel=1e-6)


def test_deferred_reweighting_switches_on_at_the_chosen_epoch():
    logits, y = _data()
    model = _model(class_weighting="effective", reweight_start_epoch=3)
    assert model.compute_loss(logits, y).item() == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-6)
    model._trainer = SimpleNamespace(current_epoch=2)  # what a Trainer exposes to the module
    assert model.compute_loss(logits, y).item() == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-6)
    model._trainer = SimpleNamespace(current_epoch=3)
    weighted = F.cross_entropy(logits, y, weight=class_weights(COUNTS, "effective"))
    assert model.compute_loss(logits, y).item() == pytest.approx(weighted.item(), rel=1e-6)


def test_ldam_margins_and_loss():
    m = ldam_margins(COUNTS, max_margin=0.5)
    raw = [n**-0.25 for n in COUNTS]
    assert m.tolist() == pytest.approx([0.5 * r / max(raw) for r in raw])
    logits, y = _data()
    model = _model(loss="ldam", ldam_scale=30.0, ldam_max_margin=0.5)
    shifted = logits.clone()
    shifted[torch.arange(6), y] -= m[y]
    assert model.compute_loss(logits, y).item() == pytest.approx(F.cross_entropy(30 * shifted, y).item(), rel=1e-5)


def test_logit_adjusted_loss_is_balanced_softmax_at_tau_one():
    logits, y = _data()
    model = _model(loss="logit_adjusted", logit_adjust_tau=1.0)
    prior = torch.tensor(COUNTS, dtype=torch.float) / sum(COUNTS)
    # Balanced Softmax (Ren et al. 2020): p_y = n_y e^{z_y} / sum_k n_k e^{z_k}
    balanced = -torch.log(prior[y] * logits.exp().gather(1, y[:, None]).squeeze(1) / (prior * logits.exp()).sum(1))
    assert model.compute_loss(logits, y).item() == pytest.approx(balanced.mean().item(), rel=1e-5)
    assert log_prior(COUNTS).tolist() == pytest.approx(torch.log(prior).tolist())


def test_posthoc_adjustment_changes_evaluation_logits_only():
    model = _model(posthoc_adjust_tau=1.0)
    logits = torch.zeros(1, 3)
    adjusted = model.evaluation_logits(logits)
    assert adjusted.argmax().item() == 2  # equal logits: the rarest class wins after subtracting log prior
    assert torch.allclose(adjusted, -log_prior(COUNTS)[None])


def test_focal_loss_closed_form_and_gamma_zero_is_cross_entropy():
    logits, y = _data()
    model = _model(loss="focal", focal_gamma=2.0)
    p = F.softmax(logits, 1).gather(1, y[:, None]).squeeze(1)
    assert model.compute_loss(logits, y).item() == pytest.approx(((1 - p) ** 2 * -torch.log(p)).mean().item(), rel=1e-5)
    assert _model(loss="focal", focal_gamma=0.0).compute_loss(logits, y).item() == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-6)


def test_baselines_compose_with_class_conditional_smoothing():
    logits, y = _data()
    model = _model(loss="logit_adjusted", label_smoothing=0.1, label_smoothing_tail=0.1, class_weighting="inverse")
    z = logits + log_prior(COUNTS)
    per_sample = F.cross_entropy(z, y, reduction="none", label_smoothing=0.1)  # each sample's smoothed loss ...
    w = class_weights(COUNTS, "inverse")[y]  # ... weighted as a whole by its class weight
    # (torch's weight= would instead weight the smoothing term of class k by w_k)
    assert model.compute_loss(logits, y).item() == pytest.approx(((w * per_sample).sum() / w.sum()).item(), rel=1e-5)


def test_baselines_need_class_counts():
    with pytest.raises(ValueError, match="need class_counts"):
        ImbalancedClassifier("digits_cnn", num_classes=3, in_channels=1, loss="ldam")
    with pytest.raises(ValueError, match="unknown loss 'cb'"):
        _model(loss="cb")


def test_class_balanced_sampler_frequencies():
    labels = np.repeat(np.arange(4), [400, 100, 20, 4])
    sampler = EpochSampler(labels, "class_balanced", seed=0)
    drawn = np.concatenate([labels[[i for i, _ in sampler]] for _ in range(20)])
    freq = np.bincount(drawn, minlength=4) / len(drawn)
    assert freq == pytest.approx([0.25] * 4, abs=0.02)
    sqrt = EpochSampler(labels, "square_root", seed=0)
    freq = np.bincount(np.concatenate([labels[[i for i, _ in sqrt]] for _ in range(20)]), minlength=4) / (20 * len(labels))
    expected = np.sqrt([400, 100, 20, 4]) / np.sqrt([400, 100, 20, 4]).sum()
    assert freq == pytest.approx(expected, abs=0.02)


def test_sampler_is_new_each_epoch_and_disjoint_across_ranks():
    labels = np.repeat(np.arange(3), [50, 10, 2])
    first, second = list(EpochSampler(labels, "class_balanced", seed=1)), None
    sampler = EpochSampler(labels, "class_balanced", seed=1)
    assert list(sampler) == first
    second = list(sampler)
    assert second != first  # the next epoch draws again
    # under DDP every rank builds the same sampler; Lightning's wrapper splits the draw
    ranks = [DistributedSamplerWrapper(EpochSampler(labels, "class_balanced", seed=1), num_replicas=2, rank=r, shuffle=False) for r in range(2)]
    positions = [list(r.__iter__()) for r in ranks]
    draw = first
    assert sorted(positions[0] + positions[1]) == sorted(draw)
    assert len(positions[0]) == len(positions[1]) == len(draw) // 2


def test_data_module_uses_the_sampler():
    dm = DigitsLT(batch_size=64, sampler="class_balanced")
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert isinstance(loader.sampler, EpochSampler) and loader.sampler.mode == "class_balanced"
    counts = np.zeros(10)
    for _ in range(10):
        for _, y in loader:
            counts += np.bincount(y.numpy(), minlength=10)
    assert counts / counts.sum() == pytest.approx([0.1] * 10, abs=0.025)
    with pytest.raises(ValueError, match="unknown sampler"):
        DigitsLT(sampler="balanced")
