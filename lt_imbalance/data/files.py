"""Image-file data modules: listing, decoding and the shared base of the file-backed datasets.

Images are decoded with PIL, converted to RGB or grey (so mixed channel counts are safe), resized
(shorter side) and centre-cropped to ``image_size``. With ``in_memory`` (the default) the selected
images are decoded once at ``setup`` and kept as uint8 tensors; otherwise per access.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import v2

from lt_imbalance.data.base import LongTailedDataModule, TensorImageDataset, UInt8ImageDataset

IMAGENET_STATS = {3: ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)), 1: ((0.449,), (0.226,))}
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


class FileImageDataModule(LongTailedDataModule):
    """Base of the data modules whose images are files. Subclasses list their files in ``__init__``
    and call :meth:`_init_files`.

    Args:
        image_size: side of the square images the model sees.
        channels: 3 (RGB) or 1 (grey); every image is converted.
        in_memory: decode the selected images once at ``setup`` and keep uint8 tensors.
        mean, std: per-channel normalisation on the [0, 1] scale; ``None`` computes them from the
            training images when ``in_memory``, else uses the ImageNet statistics.
        Other arguments as :class:`LongTailedDataModule`.
    """

    def __init__(
        self,
        image_size: int,
        channels: int,
        in_memory: bool,
        mean: Sequence[float] | None,
        std: Sequence[float] | None,
        **shared,
    ):
        super().__init__(**shared)
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        if (mean is None) != (std is None):
            raise ValueError("give both mean and std, or neither (then they are computed from the training images)")
        if mean is not None and (len(mean) != channels or len(std) != channels):
            raise ValueError(f"mean and std need {channels} values (one per channel), got {list(mean)} and {list(std)}")
        self.channels, self.in_memory = channels, in_memory
        self.mean = tuple(mean) if mean is not None else None
        self.std = tuple(std) if std is not None else None
        self._image_size = image_size

    def _init_files(
        self,
        class_names: Sequence[str],
        pool: tuple[list[Path], np.ndarray],
        test: tuple[list[Path], np.ndarray],
        val: tuple[list[Path], np.ndarray] | None = None,
    ) -> None:
        """Register the training pool, the test files and, if the dataset has one, its own validation files."""
        self._files = {"train": pool, "test": test}
        if val is not None:
            self._files["val"] = val
            self.has_official_val = True
        self._init_split(pool[1], class_names, image_size=self._image_size, num_channels=self.channels)

    def setup(self, stage: str | None = None) -> None:
        super().setup(stage)
        if self.mean is None:
            if isinstance(self.train_set, TensorImageDataset):
                scaled = self.train_set.images[:10000].float() / 255
                self.mean = tuple(scaled.mean(dim=(0, 2, 3)).tolist())
                self.std = tuple(scaled.std(dim=(0, 2, 3)).clamp_min(1e-3).tolist())
            else:
                self.mean, self.std = IMAGENET_STATS[self.channels]

    def _make_dataset(self, part, indices, transform, views=None):
        paths, labels = self._files[part]
        if indices is not None:
            paths, labels = [paths[i] for i in indices], labels[indices]
        files = ImageFileDataset(paths, torch.from_numpy(np.asarray(labels)), self.image_size, self.channels, transform, views)
        if not self.in_memory:
            return files
        shape = (0, self.channels, self.image_size, self.image_size)
        images = torch.stack([files.load(i) for i in range(len(files))]) if len(files) else torch.empty(shape, dtype=torch.uint8)
        return TensorImageDataset(images, files.labels, transform, views)
