"""Class-conditional label smoothing against its closed form, and the schedule callback."""

import math

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F

from lt_imbalance import ImbalancedClassifier
from lt_imbalance.callbacks import LabelSmoothingSchedule
from lt_imbalance.callbacks.label_smoothing import smoothing_scale
from lt_imbalance.data import DigitsLT
from lt_imbalance.losses import cc_label_smoothing_loss, class_smoothing


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


def test_module_uses_class_conditional_eps_and_scale():
    model = ImbalancedClassifier("digits_cnn", class_counts=[100, 10, 1], in_channels=1, label_smoothing=0.0, label_smoothing_tail=0.2)
    logits, y = torch.randn(4, 3), torch.tensor([0, 1, 2, 2])
    eps = torch.tensor([0.0, 0.1, 0.2])
    torch.testing.assert_close(model.per_sample_loss(logits, y), cc_label_smoothing_loss(logits, y, eps))
    model.smoothing_scale = 0.5
    torch.testing.assert_close(model.per_sample_loss(logits, y), cc_label_smoothing_loss(logits, y, eps * 0.5))
    model.smoothing_scale = 0.0
    torch.testing.assert_close(model.per_sample_loss(logits, y), F.cross_entropy(logits, y, reduction="none"))


def test_bad_eps_is_refused():
    with pytest.raises(ValueError, match="eps_tail must lie in"):
        class_smoothing([3, 1], 0.1, 1.0)
    with pytest.raises(ValueError, match="needs class_counts"):
        ImbalancedClassifier("digits_cnn", num_classes=3, in_channels=1, label_smoothing_tail=0.2)


def test_schedule_values_per_epoch():
    assert [smoothing_scale("constant", e, 4) for e in range(3)] == [1.0, 1.0, 1.0]
    assert [smoothing_scale("linear", e, 4) for e in range(6)] == pytest.approx([0, 0.25, 0.5, 0.75, 1, 1])
    assert [smoothing_scale("cosine", e, 4) for e in range(5)] == pytest.approx([(1 - math.cos(math.pi * e / 4)) / 2 for e in range(5)])
    with pytest.raises(ValueError, match="unknown label-smoothing schedule"):
        LabelSmoothingSchedule("step")


class _RecordScale(pl.Callback):
    def __init__(self):
        self.scales = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == 0:
            self.scales.append(pl_module.smoothing_scale)


def test_schedule_callback_sets_the_scale_each_epoch(tmp_path):
    dm = DigitsLT(batch_size=64)
    model = ImbalancedClassifier("digits_cnn", class_counts=dm.class_counts, in_channels=1, label_smoothing=0.05, label_smoothing_tail=0.2)
    record = _RecordScale()
    trainer = pl.Trainer(
        max_epochs=4, callbacks=[LabelSmoothingSchedule("linear"), record], logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, limit_train_batches=1, limit_val_batches=0,
    )
    trainer.fit(model, dm)
    assert record.scales == pytest.approx([0, 0.25, 0.5, 0.75])
