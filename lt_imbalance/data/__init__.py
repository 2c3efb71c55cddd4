"""Long-tailed data modules (images, medical, satellite, tabular) and the pure split functions they build on."""

from lt_imbalance.data.base import LongTailedDataModule, TensorImageDataset
from lt_imbalance.data.cifar import CIFAR10LT, CIFAR100LT
from lt_imbalance.data.digits import DigitsLT
from lt_imbalance.data.files import FileImageDataModule
from lt_imbalance.data.folder import ImageFolderLT
from lt_imbalance.data.medical import ISICLT, MedMNISTLT
from lt_imbalance.data.satellite import EuroSATLT
from lt_imbalance.data.tabular import TabularLT
from lt_imbalance.data.tiny_imagenet import TinyImageNetLT
from lt_imbalance.data.splits import Split, balanced_holdout, holdout_split, long_tailed_counts, long_tailed_split, natural_split

__all__ = [
    "CIFAR10LT",
    "CIFAR100LT",
    "DigitsLT",
    "EuroSATLT",
    "FileImageDataModule",
    "ISICLT",
    "ImageFolderLT",
    "LongTailedDataModule",
    "MedMNISTLT",
    "Split",
    "TabularLT",
    "TensorImageDataset",
    "TinyImageNetLT",
    "balanced_holdout",
    "holdout_split",
    "long_tailed_counts",
    "long_tailed_split",
    "natural_split",
]
