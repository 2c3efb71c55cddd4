"""DigitsLT: scikit-learn's bundled 8x8 handwritten digits, long-tailed. Needs no download.

The 1,797 images (about 180 per class; UCI optdigits, shipped inside scikit-learn) are split
first into a balanced test set of ``test_per_class`` images per class, then the rest forms the
pool from which the long-tailed training split is drawn (n_max = smallest class pool).
Pixel values 0..16 are mapped to uint8 0..255.
"""

from __future__ import annotations

import numpy as np
import torch

from lt_imbalance.data.image import ImageDataModule
from lt_imbalance.data.parts import DataPart, DatasetParts
from lt_imbalance.data.splits import balanced_holdout


class DigitsLT(ImageDataModule):
    """Long-tailed digits (10 classes, 1 channel, 8x8).

    Args:
        test_per_class: images per class in the balanced test set (below 174, the smallest class).
        batch_size: the global batch (default 64 here).
        imbalance_ratio: rho = n_max / n_min of the training split (default 10 here).
        val_fraction: stratified validation share of the training split (default 0.2 here).
        **kwargs: the other arguments of :class:`~lt_imbalance.data.image.ImageDataModule` and
            :class:`~lt_imbalance.data.base.LongTailedDataModule`.
    """

    hflip = False  # a mirrored digit is not the same digit

    def __init__(self, test_per_class: int = 50, batch_size: int = 64, imbalance_ratio: float = 10.0, val_fraction: float = 0.2, **kwargs):
        super().__init__(batch_size=batch_size, imbalance_ratio=imbalance_ratio, val_fraction=val_fraction, **kwargs)
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
