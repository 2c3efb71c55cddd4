"""Long-tailed data modules (images, medical, satellite, tabular) and the pure pieces they build on
(splits, samplers, datasets, augmentation policies).

Names are imported on first use, so ``lt_imbalance.data.splits`` and the other pure pieces import
without Lightning, and an image run never imports the tabular stack (pandas, scikit-learn).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

#: public name -> the module that defines it
_EXPORTS = {
    "DataPart": "parts",
    "DatasetParts": "parts",
    "LongTailedDataModule": "base",
    "TrainValSplit": "parts",
    "ImageDataModule": "image",
    "FileImageDataModule": "files",
    "CIFAR10LT": "cifar",
    "CIFAR100LT": "cifar",
    "DigitsLT": "digits",
    "ImageFolderLT": "folder",
    "TinyImageNetLT": "tiny_imagenet",
    "FileListDataModule": "file_lists",
    "ImageNetLT": "file_lists",
    "PlacesLT": "file_lists",
    "INaturalist2018": "file_lists",
    "MedMNISTLT": "medical",
    "ISICLT": "medical",
    "EuroSATLT": "satellite",
    "TabularLT": "tabular",
    "FeatureDataset": "datasets",
    "ImageFileDataset": "datasets",
    "TensorImageDataset": "datasets",
    "Draw": "splits",
    "balanced_holdout": "splits",
    "draw_cao2019": "splits",
    "stratified_holdout": "splits",
    "long_tailed_counts": "splits",
    "draw_long_tailed": "splits",
    "draw_natural": "splits",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'lt_imbalance.data' has no attribute {name!r}")
    return getattr(import_module(f"lt_imbalance.data.{_EXPORTS[name]}"), name)
