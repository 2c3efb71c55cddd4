"""ImageFolderLT: any class-per-folder image dataset.

Layout: ``<root>/<class name>/**/<image>`` (jpg, jpeg, png, bmp, gif, webp, tif, tiff), class
names sorted alphabetically, as in ``torchvision.datasets.ImageFolder``. The test set is
``test_root`` (same layout, class folders a subset of the training ones) or, when absent, a
stratified ``test_fraction`` of ``root`` held out before the long-tailed draw. Images are
decoded once, resized (shorter side) and centre-cropped to ``image_size``, and kept in memory as
uint8 when ``in_memory`` (the default); otherwise they are decoded per access.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import v2

from lt_imbalance.data.base import LongTailedDataModule, TensorImageDataset, UInt8ImageDataset
from lt_imbalance.data.splits import Profile, holdout_split

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def list_image_folder(root: Path, class_names: Sequence[str] | None = None) -> tuple[list[str], list[Path], np.ndarray]:
    """``(class_names, image paths, labels)`` of a class-per-folder tree; errors name the folder and the fix."""
    if not root.is_dir():
        raise FileNotFoundError(f"image folder '{root}' not found; expected '{root}/<class name>/<images>'.")
    found = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not found:
        raise ValueError(f"'{root}' has no class sub-folders; expected '{root}/<class name>/<images>'.")
    every_class_needs_images = class_names is None
    if class_names is None:
        class_names = found
    unknown = sorted(set(found) - set(class_names))
    if unknown:
        raise ValueError(f"'{root}' has class folders {unknown} that the training folder does not have.")
    paths, labels = [], []
    for label, name in enumerate(class_names):
        folder = root / name
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []
        if not files and every_class_needs_images:
            raise ValueError(f"class '{name}' has no images in '{folder}' (looked for {sorted(IMAGE_SUFFIXES)}).")
        paths += files
        labels += [label] * len(files)
    return list(class_names), paths, np.asarray(labels, dtype=np.int64)


class ImageFileDataset(UInt8ImageDataset):
    """Decodes, resizes and centre-crops image files to uint8 ``[C, size, size]`` on access."""

    def __init__(self, paths: Sequence[Path], labels: torch.Tensor, image_size: int, channels: int, transform=None, views=None):
        super().__init__(transform, views)
        self.paths, self.labels = list(paths), labels.long()
        self.mode = {1: "L", 3: "RGB"}[channels]
        self.resize = v2.Compose([v2.Resize(image_size, antialias=True), v2.CenterCrop(image_size)])

    def load(self, i: int) -> torch.Tensor:
        try:
            with Image.open(self.paths[i]) as img:
                x = v2.functional.pil_to_tensor(img.convert(self.mode))
        except OSError as err:
            raise OSError(f"cannot read image '{self.paths[i]}': {err}") from err
        return self.resize(x)


class ImageFolderLT(LongTailedDataModule):
    """Class-per-folder images at their natural distribution (``profile: none``) or re-split long-tailed.

    Args:
        root: training folder, ``<root>/<class name>/<images>``.
        test_root: optional test folder in the same layout.
        test_fraction: stratified share of ``root`` held out as test set when ``test_root`` is unset.
        image_size: side of the square images the model sees.
        channels: 3 (RGB) or 1 (grey); every image is converted, so mixed inputs are safe.
        in_memory: decode everything once at ``setup`` and keep uint8 tensors in memory.
        mean, std: per-channel normalisation on the [0, 1] scale (ImageNet statistics by default).
        Other arguments as :class:`LongTailedDataModule`.
    """

    def __init__(
        self,
        root: str,
        test_root: str | None = None,
        test_fraction: float = 0.2,
        image_size: int = 64,
        channels: int = 3,
        in_memory: bool = True,
        mean: Sequence[float] = (0.485, 0.456, 0.406),
        std: Sequence[float] = (0.229, 0.224, 0.225),
        batch_size: int = 128,
        num_workers: int = 0,
        augmentation: str = "standard",
        imbalance_ratio: float = 1.0,
        profile: Profile = "none",
        split_seed: int = 0,
        val_fraction: float = 0.1,
        ssl_views: bool = False,
    ):
        super().__init__(batch_size, num_workers, augmentation, imbalance_ratio, profile, split_seed, val_fraction, ssl_views)
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        if len(mean) != channels or len(std) != channels:
            raise ValueError(f"mean and std need {channels} values (one per channel), got {list(mean)} and {list(std)}")
        self.root, self.test_root, self.channels, self.in_memory = root, test_root, channels, in_memory
        self.mean, self.std = tuple(mean), tuple(std)
        names, paths, labels = list_image_folder(Path(root))
        if test_root is None:
            if not 0 < test_fraction < 1:
                raise ValueError(
                    f"test_fraction must lie in (0, 1) when no test_root is given, got {test_fraction}; "
                    "give a test folder as test_root or hold out a share of root."
                )
            pool, test = holdout_split(labels, len(names), test_fraction, split_seed + 2)
            self._test_files = ([paths[i] for i in test], labels[test])
            paths, labels = [paths[i] for i in pool], labels[pool]
        else:
            _, test_paths, test_labels = list_image_folder(Path(test_root), names)
            self._test_files = (test_paths, test_labels)
        self._pool_files = (paths, labels)
        self._init_split(labels, names, image_size=image_size, num_channels=channels)

    def _make_dataset(self, part, indices, transform, views=None):
        paths, labels = self._pool_files if part == "train" else self._test_files
        if indices is not None:
            paths, labels = [paths[i] for i in indices], labels[indices]
        files = ImageFileDataset(paths, torch.from_numpy(np.asarray(labels)), self.image_size, self.channels, transform, views)
        if not self.in_memory:
            return files
        images = torch.stack([files.load(i) for i in range(len(files))]) if len(files) else torch.empty(
            0, self.channels, self.image_size, self.image_size, dtype=torch.uint8
        )
        return TensorImageDataset(images, files.labels, transform, views)
