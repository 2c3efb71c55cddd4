"""DigitsLT: scikit-learn's bundled 8x8 handwritten digits, long-tailed. Needs no download.

The 1,797 images (about 180 per class; UCI optdigits, shipped inside scikit-learn) are split
first into a balanced test set of ``test_per_class`` images per class, then the rest forms the
pool from which the long-tailed training split is drawn (n_max = smallest class pool).
Pixel values 0..16 are mapped to uint8 0..255.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_digits

from lt_imbalance.data.base import LongTailedDataModule
from lt_imbalance.data.samplers import SamplerName
from lt_imbalance.data.splits import Profile, balanced_holdout


class DigitsLT(LongTailedDataModule):
    """Long-tailed digits (10 classes, 1 channel, 8x8). See :class:`LongTailedDataModule` for the shared arguments.

    Args:
        test_per_class: images per class in the balanced test set (below 174, the smallest class).
    """

    hflip = False  # a mirrored digit is not the same digit

    def __init__(
        self,
        batch_size: int = 64,
        num_workers: int = 0,
        augmentation: str = "standard",
        imbalance_ratio: float = 10.0,
        profile: Profile = "exponential",
        split_seed: int = 0,
        val_fraction: float = 0.2,
        ssl_views: bool = False,
        sampler: SamplerName = "random",
        device_data: bool = False,
        test_per_class: int = 50,
    ):
        super().__init__(batch_size, num_workers, augmentation, imbalance_ratio, profile, split_seed, val_fraction, ssl_views, sampler, device_data)
        digits = load_digits()
        images = torch.from_numpy(np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)).unsqueeze(1)
        labels = np.asarray(digits.target, dtype=np.int64)
        pool, test = balanced_holdout(labels, 10, test_per_class, split_seed)
        self._pool = (images[pool], torch.from_numpy(labels[pool]))
        self._test = (images[test], torch.from_numpy(labels[test]))
        scaled = self._pool[0].float() / 255.0
        self.mean, self.std = (scaled.mean().item(),), (scaled.std().item(),)
        self._init_split(labels[pool], [str(d) for d in range(10)], image_size=8, num_channels=1)
