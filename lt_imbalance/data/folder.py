"""ImageFolderLT: any class-per-folder image dataset.

Layout: ``<root>/<class name>/**/<image>`` (jpg, jpeg, png, bmp, gif, webp, tif, tiff), class
names sorted alphabetically, as in ``torchvision.datasets.ImageFolder``. The test set is
``test_root`` (same layout, class folders a subset of the training ones) or, when absent, a
stratified ``test_fraction`` of ``root`` held out before the long-tailed draw.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from lt_imbalance.data.files import FileImageDataModule, list_image_folder
from lt_imbalance.data.samplers import SamplerName
from lt_imbalance.data.splits import Profile, holdout_split


class ImageFolderLT(FileImageDataModule):
    """Class-per-folder images at their natural distribution (``profile: none``) or re-split long-tailed.

    Args:
        root: training folder, ``<root>/<class name>/<images>``.
        test_root: optional test folder in the same layout.
        test_fraction: stratified share of ``root`` held out as test set when ``test_root`` is unset.
        Image arguments as :class:`~lt_imbalance.data.files.FileImageDataModule`, the rest as :class:`~lt_imbalance.data.base.LongTailedDataModule`.
    """

    def __init__(
        self,
        root: str,
        test_root: str | None = None,
        test_fraction: float = 0.2,
        image_size: int = 64,
        channels: int = 3,
        in_memory: bool = True,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        batch_size: int = 128,
        num_workers: int = 0,
        augmentation: str = "standard",
        imbalance_ratio: float = 1.0,
        profile: Profile = "none",
        split_seed: int = 0,
        val_fraction: float = 0.1,
        ssl_views: bool = False,
        sampler: SamplerName = "random",
        device_data: bool = False,
    ):
        super().__init__(
            image_size, channels, in_memory, mean, std, batch_size=batch_size, num_workers=num_workers,
            augmentation=augmentation, imbalance_ratio=imbalance_ratio, profile=profile, split_seed=split_seed,
            val_fraction=val_fraction, ssl_views=ssl_views, sampler=sampler, device_data=device_data,
        )
        self.root, self.test_root = root, test_root
        names, paths, labels = list_image_folder(Path(root))
        if test_root is None:
            if not 0 < test_fraction < 1:
                raise ValueError(
                    f"test_fraction must lie in (0, 1) when no test_root is given, got {test_fraction}; "
                    "give a test folder as test_root or hold out a share of root."
                )
            pool, test = holdout_split(labels, len(names), test_fraction, split_seed + 2)
            test_files = ([paths[i] for i in test], labels[test])
            paths, labels = [paths[i] for i in pool], labels[pool]
        else:
            _, test_paths, test_labels = list_image_folder(Path(test_root), names)
            test_files = (test_paths, test_labels)
        self._init_files(names, (paths, labels), test_files)
