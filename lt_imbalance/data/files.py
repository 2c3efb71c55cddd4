"""Image-file data modules: listing class-per-folder trees and the shared base of the file-backed
data modules.

Images are decoded with PIL, converted to RGB or grey (so mixed channel counts are safe), resized
(shorter side to ``resize_size``, default ``image_size``) and centre-cropped to ``image_size``;
with the ``random_resized_crop`` policy, training images are decoded at full resolution and the
policy crops them. By default (streaming) each image is decoded when the loader asks for it, in
the loader's workers, so memory does not grow with the data and each DDP rank reads only its
own shard of the sampler; ``in_memory: true`` decodes the selected images once at ``setup`` and
keeps uint8 tensors (fast for small data, and needed by ``device_data``). Both give the same
batches for the same seeds (the item transforms draw from per-item seeds).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from lt_imbalance.data.base import ValSource
from lt_imbalance.data.datasets import (
    EncodedImageDataset,
    ImageFileDataset,
    ItemDataset,
    TensorImageDataset,
    collate_encoded,
    decode_encoded_batch,
)
from lt_imbalance.data.image import STATS_FILES, STATS_IMAGES, ImageDataModule
from lt_imbalance.data.loading_mode import MEMORY_LIMIT_MIB, LoadingMode, choose_loading
from lt_imbalance.data.parts import DataPart
from lt_imbalance.data.samplers import SamplerName
from lt_imbalance.data.splits import Profile
from lt_imbalance.errors import BadValue
from lt_imbalance.inputs import InputSpec


class FileImageDataModule(ImageDataModule):
    """Base of the data modules whose images are files: ``load_data`` hands over :class:`DataPart` s
    whose samples are image paths.

    After its own options the signature lists the shared ones of
    :class:`~lt_imbalance.data.image.ImageDataModule` and
    :class:`~lt_imbalance.data.base.LongTailedDataModule` (documented there).

    Args:
        image_size: side of the square images the model sees.
        channels: 3 (RGB) or 1 (grey); every image is converted.
        in_memory: ``true``: decode the selected images once at ``setup`` and keep uint8 tensors
            (needed by ``device_data``); ``false``: decode per access in the loader's workers; not
            given: in memory when they fit in ``memory_limit_mib`` decoded, else streamed
            (:mod:`lt_imbalance.data.loading_mode`).
        memory_limit_mib: the decoded size up to which images are held in memory when ``in_memory``
            is not given.
        resize_size: the shorter side is resized to this before the centre crop of ``image_size``
            (evaluation, and training with the crop-and-pad policies); default ``image_size``. The
            ImageNet protocol: 256 for 224.
        gpu_decode: for the training split, the loader's workers only read the files' bytes;
            each batch of JPEGs is decoded together on the training device (nvJPEG on a GPU) and
            given its per-item transforms there, so the CPU no longer limits the training images
            per second. JPEG files only. Evaluation sets stream as usual (they are read once per
            epoch, and the diagnostics iterate them with their own loaders).
    """

    def __init__(
        self,
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
        imbalance_ratio: float = 100.0,
        profile: Profile = "exponential",
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
            augmentation=augmentation, device_data=device_data, mean=mean, std=std, batch_size=batch_size,
            num_workers=num_workers, imbalance_ratio=imbalance_ratio, profile=profile, split_seed=split_seed,
            val_fraction=val_fraction, val_source=val_source, val_per_class=val_per_class, val_folds=val_folds, val_fold=val_fold, ssl_views=ssl_views,
            sampler=sampler,
        )  # fmt: skip
        if channels not in (1, 3):
            raise BadValue(f"channels must be 1 or 3, got {channels}")
        if resize_size is not None and resize_size < image_size:
            raise BadValue(f"resize_size ({resize_size}) must be at least image_size ({image_size}): the centre crop is taken from it")
        self.file_image_size, self.file_channels, self.in_memory = image_size, channels, in_memory
        self.resize_size = resize_size or image_size
        self.gpu_decode, self.memory_limit_mib = gpu_decode, memory_limit_mib
        self.choose_loading()  # a combination that cannot load is refused at construction
        self._train_files: ImageFileDataset | None = None  # the training files, their transforms
        self.check_normalisation()

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.file_channels, self.file_image_size, self.file_image_size)

    def choose_loading(self, decoded_mib: float | None = None) -> LoadingMode:
        return choose_loading(
            files=True, in_memory=self.in_memory, device_data=self.device_data, gpu_decode=self.gpu_decode,
            augmentation=self.augmentation, decoded_mib=decoded_mib, memory_limit_mib=self.memory_limit_mib,
        )  # fmt: skip

    def decoded_mib(self) -> float:
        """Decoded size of the selected training, validation and test images, in MiB."""
        parts = self.parts
        count = len(self.train_indices) + (len(parts.val) if parts.val is not None else len(self.val_indices)) + len(parts.test)
        return count * self.file_channels * self.file_image_size**2 / 2**20

    def statistics_source(self) -> tuple[ItemDataset, int]:
        """:data:`~lt_imbalance.data.image.STATS_FILES` training files decoded one by one, however the
        images are then held; an explicit ``in_memory: true`` takes up to
        :data:`~lt_imbalance.data.image.STATS_IMAGES` of the decoded images (as before loading modes
        were decided by size, so earlier runs keep their statistics). Cross-fitting: the files of every
        fold (:meth:`cross_fit_images`)."""
        if self.val_folds:
            return self.make_dataset(self.parts.pool, self.cross_fit_images(), train=False), STATS_FILES
        return (self.train_set, STATS_IMAGES) if self.in_memory is True else (self._train_files, STATS_FILES)

    def input_spec(self) -> InputSpec:
        return replace(super().input_spec(), resize_size=self.resize_size)

    @property
    def metadata(self) -> dict[str, Any]:
        return {
            **super().metadata, "in_memory": self.loading.in_memory, "resize_size": self.resize_size, "gpu_decode": self.gpu_decode,
        }  # fmt: skip

    def train_collate_fn(self):
        return collate_encoded if self.gpu_decode else None

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """``gpu_decode``: decode the batch's files on the training device (then only normalisation is left)."""
        if isinstance(batch, dict) and "encoded" in batch:
            return self.decode_batch(batch, self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu"))
        return super().on_before_batch_transfer(batch, dataloader_idx)

    def decode_batch(self, batch: dict[str, Any], device: torch.device) -> tuple[torch.Tensor, ...]:
        """A ``gpu_decode`` training batch (encoded files) decoded and transformed on ``device``:
        ``(x, y[, view, view])`` as the streamed loader would give them (also usable without a trainer)."""
        if self._train_files is None or not self.gpu_decode:
            raise RuntimeError("decode_batch needs the training set: set gpu_decode: true and call setup('fit') first")
        return decode_encoded_batch(batch, self._train_files, device)

    def make_dataset(self, part: DataPart, indices: np.ndarray | None, train: bool) -> Dataset:
        paths, labels = part.samples, part.labels
        if indices is not None:
            paths, labels = [paths[i] for i in indices], labels[indices]
        full = train and self.augmentation == "random_resized_crop"
        files = ImageFileDataset(
            paths, torch.from_numpy(np.asarray(labels)), self.image_size, self.channels, *self.transforms(train),
            resize_size=self.resize_size, full_resolution=full,
        )  # fmt: skip
        if train:
            self._train_files = files
        if self.gpu_decode and train:
            return EncodedImageDataset(files)
        if not self.loading.in_memory:
            return files
        shape = (0, self.channels, self.image_size, self.image_size)
        images = torch.stack([files.load(i) for i in range(len(files))]) if len(files) else torch.empty(shape, dtype=torch.uint8)
        return TensorImageDataset(images, files.labels, files.transform, files.views)
