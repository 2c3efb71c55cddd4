"""The label-smoothing schedule: values per epoch, and the callback scaling the module's loss."""

import math

import lightning.pytorch as pl
import pytest
import torch

from helpers import quiet_trainer
from lt_imbalance import ImbalancedClassifier
from lt_imbalance.callbacks import LabelSmoothingSchedule
from lt_imbalance.callbacks.smoothing_schedule import smoothing_scale
from lt_imbalance.data import DigitsLT
from lt_imbalance.losses import CrossEntropy


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
            self.scales.append(pl_module.criterion.smoothing_scale)


def test_schedule_callback_sets_the_scale_each_epoch(tmp_path):
    dm = DigitsLT(batch_size=64)
    loss = lambda counts: CrossEntropy(counts, label_smoothing=0.05, label_smoothing_tail=0.2)  # noqa: E731
    model = ImbalancedClassifier("digits_cnn", class_counts=dm.class_counts, input_shape=dm.input_shape, loss=loss)
    record = _RecordScale()
    quiet_trainer(
        tmp_path, max_epochs=4, callbacks=[LabelSmoothingSchedule("linear"), record], limit_train_batches=1, limit_val_batches=0
    ).fit(model, dm)
    assert record.scales == pytest.approx([0, 0.25, 0.5, 0.75])


def test_a_loss_without_smoothing_is_named():
    model = ImbalancedClassifier("digits_cnn", class_counts=[5, 3], input_shape=(1, 8, 8), loss=lambda counts: torch.nn.Identity())
    with pytest.raises(TypeError, match="LabelSmoothingSchedule needs Identity to provide smoothing_scale.*CrossEntropy subclass"):
        LabelSmoothingSchedule().setup(None, model, "fit")
