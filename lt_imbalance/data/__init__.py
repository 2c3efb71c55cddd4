"""Long-tailed data modules and the pure split functions they build on."""

from lt_imbalance.data.base import LongTailedDataModule, TensorImageDataset
from lt_imbalance.data.cifar import CIFAR10LT, CIFAR100LT
from lt_imbalance.data.digits import DigitsLT
from lt_imbalance.data.folder import ImageFolderLT
from lt_imbalance.data.splits import Split, holdout_split, long_tailed_counts, long_tailed_split, natural_split

__all__ = [
    "CIFAR10LT",
    "CIFAR100LT",
    "DigitsLT",
    "ImageFolderLT",
    "LongTailedDataModule",
    "Split",
    "TensorImageDataset",
    "holdout_split",
    "long_tailed_counts",
    "long_tailed_split",
    "natural_split",
]
