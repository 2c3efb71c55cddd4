"""The large long-tailed benchmarks, read from their published file lists: ImageNet-LT, Places-LT
(Liu et al. 2019, "Large-Scale Long-Tailed Recognition in an Open World") and iNaturalist 2018
(Van Horn et al. 2018).

- **ImageNet-LT**: 1,000 classes drawn from ImageNet-2012 with a Pareto profile (1,280 down to 5
  training images per class, 115,846 in all); ``ImageNet_LT_{train,val,test}.txt`` list
  ``<path relative to the ImageNet root> <label>`` per line, e.g. ``train/n01440764/n01440764_190.JPEG 0``
  (val: 20 per class taken from the ImageNet training set; test: the 50,000 ImageNet validation
  images, 50 per class, as ``val/<wnid>/ILSVRC2012_val_<n>.JPEG``, so the validation images must be
  sorted into wnid folders as the usual ImageNet preparation does).
- **Places-LT**: 365 classes of Places-365-Standard (4,980 down to 5 per class, 62,500 in all);
  ``Places_LT_{train,val,test}.txt`` in the same format over the ``places365_standard`` folder of
  Places-365's "easy format" (256 x 256) archive: ``train/airfield/00004851.jpg 0`` for train and
  val (20 per class, from the training images), ``val/airfield/Places365_val_00003597.jpg 0`` for
  test (100 per class). A leading ``/`` (as in Places-365's own lists) is ignored.
- **iNaturalist 2018**: 8,142 species, naturally long-tailed (1,000 down to 2 per class, 437,513
  training images); the official ``train2018.json`` / ``val2018.json`` (COCO-style ``images``,
  ``annotations`` with ``category_id``, ``categories``) with ``file_name`` relative to the data
  folder. As in the literature, the official validation set (3 per class) is the test set.

The lists fix the training distribution, so no long-tailed draw is made (``profile: none``); the
many / medium / few-shot groups use the literature's thresholds (>100, 20-100, <20 training
images; :mod:`lt_imbalance.metrics`). Images are decoded per access (streaming) by default.
A class is named after its folder (the ImageNet wnid, the Places scene) or, for iNaturalist,
its category name.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lt_imbalance.data.base import ValSource
from lt_imbalance.data.files import FileImageDataModule
from lt_imbalance.data.loading_mode import MEMORY_LIMIT_MIB
from lt_imbalance.data.parts import DataPart, DatasetParts
from lt_imbalance.data.readers.file_lists import folder_class_names, read_coco_annotations, read_file_list
from lt_imbalance.data.samplers import SamplerName
from lt_imbalance.data.splits import Profile
from lt_imbalance.errors import BadValue, MissingFile


class FileListDataModule(FileImageDataModule):
    """A long-tailed benchmark given as list files of ``<relative image path> <label>`` lines.

    After its own options the signature lists the shared ones of
    :class:`~lt_imbalance.data.files.FileImageDataModule`,
    :class:`~lt_imbalance.data.image.ImageDataModule` and
    :class:`~lt_imbalance.data.base.LongTailedDataModule` (documented there).

    Args:
        data_dir: the image tree the lists' paths are relative to.
        train_list / val_list / test_list: the list files (relative to ``data_dir`` or absolute);
            without ``val_list``, ``val_fraction`` of the training list is held out (0: validate
            on the test set).
        num_classes: the number of classes (labels must lie in 0..num_classes-1).
    """

    def __init__(
        self,
        data_dir: str,
        train_list: str,
        test_list: str,
        num_classes: int,
        val_list: str | None = None,
        image_size: int = 224,
        channels: int = 3,
        in_memory: bool | None = None,
        resize_size: int | None = 256,
        gpu_decode: bool = False,
        memory_limit_mib: float = MEMORY_LIMIT_MIB,
        augmentation: str = "random_resized_crop",
        device_data: bool = False,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        batch_size: int = 128,
        num_workers: int = 0,
        imbalance_ratio: float = 1.0,
        profile: Profile = "none",
        split_seed: int = 0,
        val_fraction: float = 0.0,
        val_source: ValSource = "split",
        val_per_class: int = 20,
        val_folds: int = 0,
        val_fold: int = 0,
        ssl_views: bool = False,
        sampler: SamplerName = "random",
    ):
        super().__init__(
            image_size=image_size, channels=channels, in_memory=in_memory, resize_size=resize_size,
            gpu_decode=gpu_decode, memory_limit_mib=memory_limit_mib, augmentation=augmentation,
            device_data=device_data, mean=mean, std=std, batch_size=batch_size, num_workers=num_workers,
            imbalance_ratio=imbalance_ratio, profile=profile, split_seed=split_seed, val_fraction=val_fraction,
            val_source=val_source, val_per_class=val_per_class, val_folds=val_folds, val_fold=val_fold, ssl_views=ssl_views, sampler=sampler,
        )  # fmt: skip
        self.has_official_val = val_list is not None
        self.check_validation_settings()
        self.data_dir, self.classes = Path(data_dir), num_classes
        self.lists = {"train": train_list, "val": val_list, "test": test_list}
        if not self.data_dir.is_dir():
            raise MissingFile(f"{type(self).__name__}: image folder '{self.data_dir}' not found; set data.init_args.data_dir")

    @property
    def num_classes(self) -> int:
        return self.classes

    def list_path(self, part: str) -> Path:
        path = Path(self.lists[part])
        return path if path.is_absolute() else self.data_dir / path

    def read_part(self, part: str) -> tuple[list[Path], np.ndarray]:
        return read_file_list(self.list_path(part), self.data_dir, self.classes)

    def load_data(self) -> DatasetParts:
        paths, labels = self.read_part("train")
        names = folder_class_names(paths, labels, self.data_dir, self.classes)
        test_paths, test_labels = self.read_part("test")
        val = None
        if self.has_official_val:
            val_paths, val_labels = self.read_part("val")
            val = DataPart(val_labels, val_paths)
        return DatasetParts(names, DataPart(labels, paths), DataPart(test_labels, test_paths), val)


class ImageNetLT(FileListDataModule):
    """ImageNet-LT (module docstring): ``data_dir`` is the ImageNet-2012 root (holding ``train/<wnid>/``
    and ``val/<wnid>/``) and the lists of Liu et al. 2019 sit in it (or give their paths)."""

    def __init__(
        self,
        data_dir: str = "data/imagenet",
        train_list: str = "ImageNet_LT_train.txt",
        val_list: str | None = "ImageNet_LT_val.txt",
        test_list: str = "ImageNet_LT_test.txt",
        num_classes: int = 1000,
        image_size: int = 224,
        channels: int = 3,
        in_memory: bool | None = None,
        resize_size: int | None = 256,
        gpu_decode: bool = False,
        memory_limit_mib: float = MEMORY_LIMIT_MIB,
        augmentation: str = "random_resized_crop",
        device_data: bool = False,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        batch_size: int = 128,
        num_workers: int = 0,
        imbalance_ratio: float = 1.0,
        profile: Profile = "none",
        split_seed: int = 0,
        val_fraction: float = 0.0,
        val_source: ValSource = "split",
        val_per_class: int = 20,
        val_folds: int = 0,
        val_fold: int = 0,
        ssl_views: bool = False,
        sampler: SamplerName = "random",
    ):
        super().__init__(
            data_dir=data_dir, train_list=train_list, test_list=test_list, num_classes=num_classes, val_list=val_list,
            image_size=image_size, channels=channels, in_memory=in_memory, resize_size=resize_size,
            gpu_decode=gpu_decode, memory_limit_mib=memory_limit_mib, augmentation=augmentation,
            device_data=device_data, mean=mean, std=std, batch_size=batch_size, num_workers=num_workers,
            imbalance_ratio=imbalance_ratio, profile=profile, split_seed=split_seed, val_fraction=val_fraction,
            val_source=val_source, val_per_class=val_per_class, val_folds=val_folds, val_fold=val_fold, ssl_views=ssl_views, sampler=sampler,
        )  # fmt: skip


class PlacesLT(FileListDataModule):
    """Places-LT (module docstring): ``data_dir`` is the ``places365_standard`` folder (holding
    ``train/<scene>/`` and ``val/<scene>/``) the lists of Liu et al. 2019 are relative to, and the
    lists sit in it (or give their paths)."""

    def __init__(
        self,
        data_dir: str = "data/places365",
        train_list: str = "Places_LT_train.txt",
        val_list: str | None = "Places_LT_val.txt",
        test_list: str = "Places_LT_test.txt",
        num_classes: int = 365,
        image_size: int = 224,
        channels: int = 3,
        in_memory: bool | None = None,
        resize_size: int | None = 256,
        gpu_decode: bool = False,
        memory_limit_mib: float = MEMORY_LIMIT_MIB,
        augmentation: str = "random_resized_crop",
        device_data: bool = False,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        batch_size: int = 128,
        num_workers: int = 0,
        imbalance_ratio: float = 1.0,
        profile: Profile = "none",
        split_seed: int = 0,
        val_fraction: float = 0.0,
        val_source: ValSource = "split",
        val_per_class: int = 20,
        val_folds: int = 0,
        val_fold: int = 0,
        ssl_views: bool = False,
        sampler: SamplerName = "random",
    ):
        super().__init__(
            data_dir=data_dir, train_list=train_list, test_list=test_list, num_classes=num_classes, val_list=val_list,
            image_size=image_size, channels=channels, in_memory=in_memory, resize_size=resize_size,
            gpu_decode=gpu_decode, memory_limit_mib=memory_limit_mib, augmentation=augmentation,
            device_data=device_data, mean=mean, std=std, batch_size=batch_size, num_workers=num_workers,
            imbalance_ratio=imbalance_ratio, profile=profile, split_seed=split_seed, val_fraction=val_fraction,
            val_source=val_source, val_per_class=val_per_class, val_folds=val_folds, val_fold=val_fold, ssl_views=ssl_views, sampler=sampler,
        )  # fmt: skip


class INaturalist2018(FileListDataModule):
    """iNaturalist 2018 (module docstring): ``data_dir`` holds the JSON files and the
    ``train_val2018/`` image tree their ``file_name`` s point into."""

    def __init__(
        self,
        data_dir: str = "data/inaturalist2018",
        train_json: str = "train2018.json",
        test_json: str = "val2018.json",
        num_classes: int = 8142,
        image_size: int = 224,
        channels: int = 3,
        in_memory: bool | None = None,
        resize_size: int | None = 256,
        gpu_decode: bool = False,
        memory_limit_mib: float = MEMORY_LIMIT_MIB,
        augmentation: str = "random_resized_crop",
        device_data: bool = False,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        batch_size: int = 128,
        num_workers: int = 0,
        imbalance_ratio: float = 1.0,
        profile: Profile = "none",
        split_seed: int = 0,
        val_fraction: float = 0.0,
        val_source: ValSource = "split",
        val_per_class: int = 20,
        val_folds: int = 0,
        val_fold: int = 0,
        ssl_views: bool = False,
        sampler: SamplerName = "random",
    ):
        super().__init__(
            data_dir=data_dir, train_list=train_json, test_list=test_json, num_classes=num_classes, val_list=None,
            image_size=image_size, channels=channels, in_memory=in_memory, resize_size=resize_size,
            gpu_decode=gpu_decode, memory_limit_mib=memory_limit_mib, augmentation=augmentation,
            device_data=device_data, mean=mean, std=std, batch_size=batch_size, num_workers=num_workers,
            imbalance_ratio=imbalance_ratio, profile=profile, split_seed=split_seed, val_fraction=val_fraction,
            val_source=val_source, val_per_class=val_per_class, val_folds=val_folds, val_fold=val_fold, ssl_views=ssl_views, sampler=sampler,
        )  # fmt: skip

    def read_part(self, part: str) -> tuple[list[Path], np.ndarray]:
        paths, labels, self.category_names = read_coco_annotations(self.list_path(part), self.data_dir)
        bad = labels[(labels < 0) | (labels >= self.classes)]
        if len(bad):
            raise BadValue(f"{self.list_path(part)}: category ids {sorted(set(bad.tolist()))[:5]} are outside 0..{self.classes - 1}")
        return paths, labels

    def load_data(self) -> DatasetParts:
        paths, labels = self.read_part("train")
        present = set(labels.tolist())
        missing = [c for c in range(self.classes) if c not in present]
        if missing:
            raise BadValue(f"{self.list_path('train')}: categories {missing[:10]} have no training images")
        names = [self.category_names.get(c, str(c)) for c in range(self.classes)]
        test_paths, test_labels = self.read_part("test")
        return DatasetParts(names, DataPart(labels, paths), DataPart(test_labels, test_paths))
