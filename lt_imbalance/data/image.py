"""The base of the image data modules: augmentation, SSL views, normalisation, on-device data.

Images stay uint8 ``[C, H, W]`` through the data pipeline; a policy only crops, flips and
re-colours them (:mod:`lt_imbalance.data.augment`). Conversion to float and normalisation happen
once per batch on the training device (:meth:`ImageDataModule.on_after_batch_transfer`).

**Normalisation, one policy for every image module**: x -> (x / 255 - mean_c) / std_c per channel,
with ``mean`` / ``std`` as given, or, when not given, those the model's pretrained backbone was
trained with (:class:`~lt_imbalance.contracts.PretrainedInputs`, e.g. a timm backbone with
``pretrained: true``), or else computed at ``setup`` from the training split (at most :data:`STATS_IMAGES` images in memory, or :data:`STATS_FILES` decoded files, spread
evenly over it; std floored at 1e-3). The values used are recorded in the run metadata.

**On-device data** (``device_data: true``): the training images are held on the accelerator as
uint8 and each batch is augmented there (:mod:`lt_imbalance.data.device_augment`), each image with
its own random parameters; the training loader then yields only indices, labels and augmentation
seeds. Needs the images in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from lt_imbalance.contracts import PretrainedInputs, provides
from lt_imbalance.data import device_augment
from lt_imbalance.data.augment import build_ssl_transform, build_train_transform, check_policy
from lt_imbalance.data.base import LongTailedDataModule, ValSource
from lt_imbalance.data.datasets import IndexDataset, ItemDataset, TensorImageDataset
from lt_imbalance.data.loading_mode import LoadingMode, choose_loading
from lt_imbalance.data.parts import DataPart
from lt_imbalance.data.samplers import SamplerName
from lt_imbalance.data.splits import Profile
from lt_imbalance.errors import BadValue
from lt_imbalance.inputs import InputSpec, Preprocessor

#: at most this many training images (held in memory / decoded from files) give the normalisation statistics
STATS_IMAGES = 10_000
STATS_FILES = 1_000


class ImageDataModule(LongTailedDataModule):
    """Long-tailed image data (module docstring). Subclasses hand over uint8 images ``[N, C, H, W]``
    (or image files, :class:`~lt_imbalance.data.files.FileImageDataModule`) from ``load_data``.

    After its own options the signature lists the shared ones of
    :class:`~lt_imbalance.data.base.LongTailedDataModule` (documented there).

    Args:
        augmentation: training policy name (``none``, ``standard``, ``autoaugment``,
            ``randaugment``, ``trivialaugment``, ``random_resized_crop``; see :mod:`lt_imbalance.data.augment`).
        device_data: hold the training images on the training device as uint8 and apply the
            augmentation policy (and SSL views) per batch there; the augmentation of a batch is a
            function of its first sample's seed, so runs and resumes stay reproducible.
        mean: per-channel mean on the [0, 1] scale; ``None`` computes it from the training images.
        std: per-channel standard deviation on the [0, 1] scale; ``None`` computes it likewise.
    """

    #: whether mirroring preserves the meaning of an image (False for digits)
    hflip = True

    def __init__(
        self,
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
            batch_size=batch_size, num_workers=num_workers, imbalance_ratio=imbalance_ratio, profile=profile,
            split_seed=split_seed, val_fraction=val_fraction, val_source=val_source, val_per_class=val_per_class, val_folds=val_folds, val_fold=val_fold,
            ssl_views=ssl_views, sampler=sampler,
        )  # fmt: skip
        check_policy(augmentation)
        if (mean is None) != (std is None):
            raise BadValue("give both mean and std, or neither (then they are computed from the training images)")
        self.augmentation, self.device_data = augmentation, device_data
        self.mean = tuple(mean) if mean is not None else None
        self.std = tuple(std) if std is not None else None
        #: where mean / std come from: given, the pretrained backbone's, or the training images
        self.normalisation = "given" if mean is not None else None
        self._resident: dict[torch.device, torch.Tensor] = {}
        self._generators: dict[torch.device, torch.Generator] = {}
        self._preprocessor: Preprocessor | None = None
        self._device_transform = self._device_views = None
        self._loading: LoadingMode | None = None
        ImageDataModule.choose_loading(self)  # a combination that cannot load is refused here (files: again, with their settings)

    @property
    def loading(self) -> LoadingMode:
        """How the images are served (:mod:`lt_imbalance.data.loading_mode`): decided from the settings
        until ``setup``, which decides it for good (with the decoded size of the selected images)."""
        return self._loading if self._loading is not None else self.choose_loading()

    @property
    def channels(self) -> int:
        return self.input_shape[0]

    @property
    def image_size(self) -> int:
        return self.input_shape[-1]

    def check_normalisation(self) -> None:
        """Refuse ``mean`` / ``std`` whose length is not the number of channels."""
        if self.mean is not None and (len(self.mean) != self.channels or len(self.std) != self.channels):
            raise BadValue(f"mean and std need {self.channels} values (one per channel), got {list(self.mean)} and {list(self.std)}")

    # ---- datasets -------------------------------------------------------------------------
    def make_dataset(self, part: DataPart, indices: np.ndarray | None, train: bool) -> Dataset:
        images, labels = part.samples, torch.from_numpy(part.labels)
        if indices is not None:
            images, labels = images[torch.from_numpy(indices)], labels[indices]
        return TensorImageDataset(images, labels, *self.transforms(train))

    def transforms(self, train: bool) -> tuple[Any, Any]:
        """``(transform, views)`` of the per-sample CPU path: the augmentation policy and, with
        ``ssl_views``, the SimCLR view, for training; nothing for evaluation."""
        if not train:
            return None, None
        transform = build_train_transform(self.augmentation, self.image_size, self.hflip)
        views = build_ssl_transform(self.image_size, self.hflip, self.channels) if self.ssl_views else None
        return transform, views

    def choose_loading(self, decoded_mib: float | None = None) -> LoadingMode:
        """The loading mode (:func:`~lt_imbalance.data.loading_mode.choose_loading`): arrays are in memory."""
        return choose_loading(files=False, in_memory=None, device_data=self.device_data, gpu_decode=False, augmentation=self.augmentation)

    def decoded_mib(self) -> float | None:
        """Decoded size of the selected images in MiB, where it decides the loading mode (image files)."""
        return None

    def statistics_source(self) -> tuple[ItemDataset, int]:
        """The training images the normalisation statistics come from, and at most how many of them
        (cross-fitting: the images of every fold, :meth:`cross_fit_images`)."""
        if self.val_folds:
            return self.make_dataset(self.parts.pool, self.cross_fit_images(), train=False), STATS_IMAGES
        return self.train_set, STATS_IMAGES

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        self.check_normalisation()
        self._loading = self.choose_loading(self.decoded_mib())
        super().setup(stage)
        if self.mean is None:
            pretrained = self.pretrained_statistics()
            self.normalisation = "pretrained backbone" if pretrained else "training images"
            self.mean, self.std = pretrained or self.statistics(*self.statistics_source())
        if self.loading.name == "device":
            self._setup_device_data()

    def pretrained_statistics(self) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
        """The (mean, std) that the model being trained asks for (a pretrained backbone's), if any."""
        model = self.trainer.lightning_module if self.trainer is not None else None
        if not provides(model, PretrainedInputs) or model.input_statistics is None:
            return None
        mean, std = (tuple(float(v) for v in values) for values in model.input_statistics)
        if len(mean) != self.channels:
            raise BadValue(
                f"the backbone's pretrained statistics have {len(mean)} channels but the images have {self.channels}; set in_chans"
            )
        return mean, std

    @staticmethod
    def statistics(dataset: ItemDataset, limit: int = STATS_IMAGES) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean and std on the [0, 1] scale of at most ``limit`` images of ``dataset``
        spread evenly over it (un-augmented): held in memory, or decoded from files one at a time."""
        n = len(dataset)
        picks = np.unique(np.linspace(0, n - 1, min(n, limit)).round().astype(np.int64))
        in_memory = isinstance(dataset, TensorImageDataset)
        images = [dataset.images[picks]] if in_memory else [dataset.load(int(i))[None] for i in picks]  # files: any size
        total, first, second = 0, 0.0, 0.0
        for x in images:
            scaled = x.double().div(255)
            total += x.shape[0] * x.shape[2] * x.shape[3]
            first = first + scaled.sum(dim=(0, 2, 3))
            second = second + scaled.square().sum(dim=(0, 2, 3))
        mean = first / total
        std = ((second - total * mean.square()) / max(total - 1, 1)).clamp_min(0).sqrt().clamp_min(1e-3)  # unbiased, as torch.std
        return tuple(mean.tolist()), tuple(std.tolist())

    def _setup_device_data(self) -> None:
        """Batched device transforms in place of the per-sample ones; the loader serves indices."""
        self.train_set.transform = self.train_set.views = None
        self._device_transform = device_augment.build_train_transform(self.augmentation, self.image_size, self.hflip)
        if self.ssl_views:
            self._device_views = device_augment.build_ssl_transform(self.image_size, self.hflip, self.channels)

    def training_items(self) -> tuple[Dataset, int]:
        if self.loading.name == "device":  # indices only: workers would cost more than they save
            return IndexDataset(self.train_set.labels), 0
        return self.train_set, self.num_workers

    # ---- batches on the device ------------------------------------------------------------
    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """``device_data``: the batch's augmentation seed stays on the host (a Python int)."""
        if isinstance(batch, dict):
            batch["seed"] = int(batch["seed"][0])
        return batch

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """uint8 images (and SSL views) -> float, scaled to [0, 1] and normalised per channel, on the batch's device."""
        if isinstance(batch, dict):
            batch = self._augment_on_device(batch)
        return tuple(self.normalise(t) if i != 1 else t for i, t in enumerate(batch))

    def _augment_on_device(self, batch: dict) -> tuple[torch.Tensor, ...]:
        """``(x, y[, v1, v2])`` from a batch of indices: gather the resident images, augment them."""
        device = batch["index"].device
        if device not in self._resident:
            self._resident[device] = self.train_set.images.to(device)
            self._generators[device] = torch.Generator(device)
        images = self._resident[device][batch["index"]]
        g = self._generators[device].manual_seed(batch["seed"] % 2**63)
        x = self._device_transform(images, g) if self._device_transform is not None else images
        if self._device_views is None:
            return x, batch["label"]
        return x, batch["label"], self._device_views(images, g), self._device_views(images, g)

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 images -> model inputs by the :class:`~lt_imbalance.inputs.Preprocessor` of
        :meth:`input_spec` (the one ``predict`` and ``export`` apply); anything else passes through."""
        if x.dtype != torch.uint8:
            return x
        if self._preprocessor is None:
            self._preprocessor = Preprocessor(self.input_spec())
        return self._preprocessor.to(x.device)(x)

    def input_spec(self) -> InputSpec:
        """Images: decoded to RGB or grey, resized (shorter side) and centre-cropped to the input size,
        then normalised per channel (:class:`~lt_imbalance.inputs.Preprocessor`)."""
        return replace(super().input_spec(), kind="image", mean=self.mean, std=self.std)

    @property
    def metadata(self) -> dict[str, Any]:
        return {
            **super().metadata,
            "augmentation": self.augmentation,
            "device_data": self.device_data,
            "loading": self.loading.name,
            "loading_reason": self.loading.reason,
            "mean": self.mean,
            "std": self.std,
            "normalisation": self.normalisation,
        }
