"""Tiny ImageNet-LT on a fake tiny-imagenet-200 folder in the real layout."""

import pytest
import torch

from fakes import write_fake_tiny_imagenet
from lt_imbalance.data import TinyImageNetLT, long_tailed_counts


def _batch(dm, loader="train_dataloader"):
    dm.setup("fit")
    return next(iter(getattr(dm, loader)()))


def test_tiny_imagenet_lt_construction(tmp_path):
    root = write_fake_tiny_imagenet(tmp_path)
    dm = TinyImageNetLT(data_dir=str(root), imbalance_ratio=10, batch_size=4)
    assert dm.wnids == ["n01443537", "n01629819", "n01641577"]  # sorted, not wnids.txt order
    assert dm.class_names[0] == "n01443537: thing 0"
    assert dm.class_counts == long_tailed_counts(3, 20, 10)
    x, y = _batch(dm)
    assert x.shape == (4, 3, 64, 64) and x.dtype == torch.uint8
    assert dm.test_counts == [4, 4, 4] and dm.val_set is dm.test_set
    again = TinyImageNetLT(data_dir=str(root / "tiny-imagenet-200"), imbalance_ratio=10, batch_size=4)
    assert again.split_hash == dm.split_hash


def test_tiny_imagenet_bad_layouts(tmp_path):
    with pytest.raises(FileNotFoundError, match="tiny-imagenet-200.*wnids.txt.*val_annotations.txt.*Download"):
        TinyImageNetLT(data_dir=str(tmp_path / "none"))
    root = write_fake_tiny_imagenet(tmp_path / "a")
    ann = root / "tiny-imagenet-200" / "val" / "val_annotations.txt"
    ann.write_text(ann.read_text() + "val_x.JPEG\tn99999999\t0\t0\t1\t1\n")
    with pytest.raises(ValueError, match=r"val_annotations.txt, line 13: wnid 'n99999999' is not in wnids.txt"):
        TinyImageNetLT(data_dir=str(root), imbalance_ratio=2).class_counts
    ann.write_text("just-one-field\n")
    with pytest.raises(ValueError, match=r"line 1: expected"):
        TinyImageNetLT(data_dir=str(root), imbalance_ratio=2).class_counts
