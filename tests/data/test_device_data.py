"""The on-device data path through the data modules: batches like the CPU path's, seeded, and
refused (with the fix) where the images are not in memory."""

from __future__ import annotations

import pytest
import torch

from fakes import write_image_folder
from lt_imbalance.data import CIFAR10LT, ImageFolderLT
from lt_imbalance.data.datasets import TensorImageDataset


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
    settings = {"root": str(root), "image_size": 8, "mean": (0.5,) * 3, "std": (0.2,) * 3, "device_data": True, "batch_size": 4}
    with pytest.raises(ValueError, match="device_data needs the training images in memory; drop in_memory: false"):
        ImageFolderLT(in_memory=False, **settings)
    too_big = ImageFolderLT(memory_limit_mib=0.001, **settings)  # 16 images of 3 x 8 x 8 bytes: 0.003 MiB
    with pytest.raises(ValueError, match=r"selected images take 0 MiB decoded, more than memory_limit_mib \(0\); raise"):
        too_big.setup("fit")


def test_a_small_folder_is_held_in_memory_and_a_large_one_streams(tmp_path):
    """The loading rule (lt_imbalance.data.loading_mode): decoded size against memory_limit_mib."""
    from lt_imbalance.data.datasets import ImageFileDataset

    root = write_image_folder(tmp_path / "train", {"a": 10, "b": 6})
    small = ImageFolderLT(root=str(root), image_size=8, device_data=True, batch_size=4)  # no in_memory flag needed
    small.setup("fit")
    assert small.loading.name == "device" and isinstance(small.train_set, TensorImageDataset)
    assert small.metadata["loading"] == "device" and "<= memory_limit_mib" in small.metadata["loading_reason"]
    large = ImageFolderLT(root=str(root), image_size=8, batch_size=4, memory_limit_mib=0.001)
    large.setup("fit")
    assert large.loading.name == "stream" and isinstance(large.train_set, ImageFileDataset)
    assert [torch.equal(a, b) for a, b in zip(next(iter(small.val_dataloader())), next(iter(large.val_dataloader())))] == [True, True]
