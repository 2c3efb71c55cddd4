"""The on-device data path through the data modules: batches like the CPU path's, seeded, and
refused (with the fix) where the images are not in memory."""

from __future__ import annotations

import pytest
import torch

from fakes import write_image_folder
from lt_imbalance.data import CIFAR10LT, ImageFolderLT


def _first_train_batch(dm):
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    batch = dm.on_before_batch_transfer(batch, 0)
    return dm.on_after_batch_transfer(batch, 0)


@pytest.mark.parametrize("ssl", [False, True])
def test_device_data_batches_look_like_the_cpu_path(cifar10_dir, ssl):
    kwargs = dict(data_dir=str(cifar10_dir), batch_size=32, imbalance_ratio=10, augmentation="trivialaugment", ssl_views=ssl)
    cpu = _first_train_batch(CIFAR10LT(**kwargs))
    dev_dm = CIFAR10LT(device_data=True, **kwargs)
    dev = _first_train_batch(dev_dm)
    assert len(dev) == len(cpu) == (4 if ssl else 2)
    for a, b in zip(dev, cpu):
        assert a.shape == b.shape and a.dtype == b.dtype
    assert torch.equal(dev[1], cpu[1])  # same epoch order: same labels
    for images in [dev[0]] + list(dev[2:]):  # normalised floats in the normalised uint8 range
        lo, hi = [(v - torch.tensor(dev_dm.mean)) / torch.tensor(dev_dm.std) for v in (0.0, 1.0)]
        assert (images >= lo.view(1, 3, 1, 1) - 1e-5).all() and (images <= hi.view(1, 3, 1, 1) + 1e-5).all()
    if ssl:
        assert not torch.equal(dev[2], dev[3])
    again = _first_train_batch(CIFAR10LT(device_data=True, **kwargs))
    assert all(torch.equal(a, b) for a, b in zip(dev, again))  # seeded by the sampler's seeds
    assert dev_dm.metadata["device_data"] is True


def test_device_data_needs_images_in_memory(tmp_path):
    root = write_image_folder(tmp_path / "train", {"a": 10, "b": 6})
    dm = ImageFolderLT(root=str(root), image_size=8, in_memory=False, mean=(0.5,) * 3, std=(0.2,) * 3, device_data=True, batch_size=4)
    with pytest.raises(ValueError, match="in_memory: true"):
        dm.setup("fit")
