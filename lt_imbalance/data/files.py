"""Image-file data modules: listing class-per-folder trees and the shared base of the file-backed
data modules.

Images are decoded with PIL, converted to RGB or grey (so mixed channel counts are safe), resized
(shorter side) and centre-cropped to ``image_size``. With ``in_memory`` (the default) the selected
images are decoded once at ``setup`` and kept as uint8 tensors; otherwise per access, in the
loader's workers.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from lt_imbalance.data.base import DataPart
from lt_imbalance.data.datasets import ImageFileDataset, TensorImageDataset
from lt_imbalance.data.image import ImageDataModule

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def list_image_folder(root: Path, class_names: Sequence[str] | None = None) -> tuple[list[str], list[Path], np.ndarray]:
    """``(class_names, image paths, labels)`` of a class-per-folder tree; errors name the folder and the fix.

    Images may sit anywhere below their class folder. With ``class_names`` given (a test folder),
    class folders may be missing or empty but unknown ones are refused.
    """
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


class FileImageDataModule(ImageDataModule):
    """Base of the data modules whose images are files: ``load_data`` hands over :class:`DataPart` s
    whose samples are image paths.

    Args:
        image_size: side of the square images the model sees.
        channels: 3 (RGB) or 1 (grey); every image is converted.
        in_memory: decode the selected images once at ``setup`` and keep uint8 tensors (needed by
            ``device_data``); otherwise decode per access in the loader's workers.
        **kwargs: the arguments of :class:`~lt_imbalance.data.image.ImageDataModule` and
            :class:`~lt_imbalance.data.base.LongTailedDataModule`.
    """

    def __init__(self, image_size: int = 64, channels: int = 3, in_memory: bool = True, **kwargs):
        super().__init__(**kwargs)
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        self.file_image_size, self.file_channels, self.in_memory = image_size, channels, in_memory
        self.check_normalisation()

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.file_channels, self.file_image_size, self.file_image_size)

    def make_dataset(self, part: DataPart, indices: np.ndarray | None, train: bool) -> Dataset:
        paths, labels = part.samples, part.labels
        if indices is not None:
            paths, labels = [paths[i] for i in indices], labels[indices]
        files = ImageFileDataset(paths, torch.from_numpy(np.asarray(labels)), self.image_size, self.channels, *self.transforms(train))
        if not self.in_memory:
            return files
        shape = (0, self.channels, self.image_size, self.image_size)
        images = torch.stack([files.load(i) for i in range(len(files))]) if len(files) else torch.empty(shape, dtype=torch.uint8)
        return TensorImageDataset(images, files.labels, files.transform, files.views)
