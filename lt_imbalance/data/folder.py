"""ImageFolderLT: any class-per-folder image dataset.

Layout: ``<root>/<class name>/**/<image>`` (jpg, jpeg, png, bmp, gif, webp, tif, tiff), class
names sorted alphabetically, as in ``torchvision.datasets.ImageFolder``. The test set is
``test_root`` (same layout, class folders a subset of the training ones) or, when absent, a
stratified ``test_fraction`` of ``root`` held out before the long-tailed draw.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lt_imbalance.data.base import ValSource
from lt_imbalance.data.files import FileImageDataModule
from lt_imbalance.data.loading_mode import MEMORY_LIMIT_MIB
from lt_imbalance.data.parts import DataPart, DatasetParts
from lt_imbalance.data.readers.folders import list_image_folder
from lt_imbalance.data.samplers import SamplerName
from lt_imbalance.data.splits import Profile, stratified_holdout
from lt_imbalance.errors import BadValue


class ImageFolderLT(FileImageDataModule):
    """Class-per-folder images at their natural distribution (``profile: none``) or re-split long-tailed.

    After its own options the signature lists the shared ones of
    :class:`~lt_imbalance.data.files.FileImageDataModule`,
    :class:`~lt_imbalance.data.image.ImageDataModule` and
    :class:`~lt_imbalance.data.base.LongTailedDataModule` (documented there).

    Args:
        root: training folder, ``<root>/<class name>/<images>``.
        test_root: optional test folder in the same layout.
        test_fraction: stratified share of ``root`` held out as test set when ``test_root`` is unset.
        imbalance_ratio: rho of a long-tailed re-split (default 1: keep the data's own distribution).
        profile: ``none`` by default (the natural distribution); ``exponential`` / ``step`` re-split.
    """

    def __init__(
        self,
        root: str,
        test_root: str | None = None,
        test_fraction: float = 0.2,
        image_size: int = 64,
        channels: int = 3,
        in_memory: bool | None = None,
        resize_size: int | None = None,
        gpu_decode: bool = False,
        memory_limit_mib: float = MEMORY_LIMIT_MIB,
        augmentation: str = "standard",
        device_data: bool = False,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        batch_size: int = 128,
        num_workers: int = 0,
        imbalance_ratio: float = 1.0,
        profile: Profile = "none",
        split_seed: int = 0,
        val_fraction: float = 0.1,
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
        if test_root is None and not 0 < test_fraction < 1:
            raise BadValue(
                f"test_fraction must lie in (0, 1) when no test_root is given, got {test_fraction}; "
                "give a test folder as test_root or hold out a share of root."
            )
        self.root, self.test_root, self.test_fraction = root, test_root, test_fraction
        self.listing = list_image_folder(Path(root))  # fail now, naming the folder, when it is wrong

    def load_data(self) -> DatasetParts:
        names, paths, labels = self.listing
        if self.test_root is None:
            pool, test = stratified_holdout(labels, len(names), self.test_fraction, self.split_seed + 2)
            return DatasetParts(names, DataPart(labels[pool], [paths[i] for i in pool]), DataPart(labels[test], [paths[i] for i in test]))
        _, test_paths, test_labels = list_image_folder(Path(self.test_root), names)
        return DatasetParts(names, DataPart(labels, paths), DataPart(test_labels, test_paths))
