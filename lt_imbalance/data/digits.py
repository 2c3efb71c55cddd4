"""DigitsLT: scikit-learn's bundled 8x8 handwritten digits, long-tailed. Needs no download.

The 1,797 images (about 180 per class; UCI optdigits, shipped inside scikit-learn) are split
first into a balanced test set of ``test_per_class`` images per class, then the rest forms the
pool from which the long-tailed training split is drawn (n_max = smallest class pool).
Pixel values 0..16 are mapped to uint8 0..255.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from lt_imbalance.data.base import ValSource
from lt_imbalance.data.image import ImageDataModule
from lt_imbalance.data.parts import DataPart, DatasetParts
from lt_imbalance.data.samplers import SamplerName
from lt_imbalance.data.splits import Profile, balanced_holdout


class DigitsLT(ImageDataModule):
    """Long-tailed digits (10 classes, 1 channel, 8x8).

    After its own options the signature lists the shared ones of
    :class:`~lt_imbalance.data.image.ImageDataModule` and
    :class:`~lt_imbalance.data.base.LongTailedDataModule` (documented there).

    Args:
        test_per_class: images per class in the balanced test set (below 174, the smallest class).
        batch_size: the global batch (default 64 here).
        imbalance_ratio: rho = n_max / n_min of the training split (default 10 here).
        val_fraction: stratified validation share of the training split (default 0.2 here).
    """

    hflip = False  # a mirrored digit is not the same digit

    def __init__(
        self,
        test_per_class: int = 50,
        augmentation: str = "standard",
        device_data: bool = False,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        batch_size: int = 64,
        num_workers: int = 0,
        imbalance_ratio: float = 10.0,
        profile: Profile = "exponential",
        split_seed: int = 0,
        val_fraction: float = 0.2,
        val_source: ValSource = "split",
        val_per_class: int = 20,
        val_folds: int = 0,
        val_fold: int = 0,
        ssl_views: bool = False,
        sampler: SamplerName = "random",
    ):
        super().__init__(
            augmentation=augmentation, device_data=device_data, mean=mean, std=std, batch_size=batch_size,
            num_workers=num_workers, imbalance_ratio=imbalance_ratio, profile=profile, split_seed=split_seed,
            val_fraction=val_fraction, val_source=val_source, val_per_class=val_per_class, val_folds=val_folds, val_fold=val_fold, ssl_views=ssl_views,
            sampler=sampler,
        )  # fmt: skip
        self.test_per_class = test_per_class

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (1, 8, 8)

    def load_data(self) -> DatasetParts:
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = torch.from_numpy(np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)).unsqueeze(1)
        labels = np.asarray(digits.target, dtype=np.int64)
        pool, test = balanced_holdout(labels, 10, self.test_per_class, self.split_seed)
        return DatasetParts(
            class_names=[str(d) for d in range(10)],
            pool=DataPart(labels[pool], images[pool]),
            test=DataPart(labels[test], images[test]),
        )
