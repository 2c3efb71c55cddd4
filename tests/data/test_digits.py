"""DigitsLT: scikit-learn's real digits, long-tailed; SSL views; the global batch size."""

from types import SimpleNamespace

import pytest
import torch

from lt_imbalance.data import DigitsLT, long_tailed_counts


def test_digits_lt_is_real_and_long_tailed():
    dm = DigitsLT(imbalance_ratio=10, val_fraction=0.2)
    assert dm.num_classes == 10 and dm.input_shape == (1, 8, 8) and dm.hflip is False
    total = [a + b for a, b in zip(dm.class_counts, dm.val_counts)]
    assert total == long_tailed_counts(10, min(total[0], 124), 10)
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape[1:] == (1, 8, 8) and x.dtype == torch.uint8 and x.max() > 200
    assert dm.test_counts == [50] * 10


def test_ssl_views_are_two_random_views_per_image_and_normalised():
    dm = DigitsLT(batch_size=16, ssl_views=True)
    dm.setup("fit")
    x, y, v1, v2 = next(iter(dm.train_dataloader()))
    assert v1.shape == v2.shape == x.shape and v1.dtype == torch.uint8
    assert not torch.equal(v1, v2)
    xf, yf, v1f, v2f = dm.on_after_batch_transfer((x, y, v1, v2), 0)
    assert v1f.dtype == torch.float32 and torch.equal(yf, y)
    val = next(iter(dm.val_dataloader()))
    assert len(val) == 2  # evaluation batches carry no views


def test_global_batch_size_is_split_across_devices():
    dm = DigitsLT(batch_size=64)
    dm.trainer = SimpleNamespace(world_size=4)
    assert dm.per_device_batch_size == 16
    dm.trainer = SimpleNamespace(world_size=3)
    with pytest.warns(UserWarning, match="global batch_size=64 is not divisible by 3 devices; each loads 21"):
        assert dm.per_device_batch_size == 21
