"""Shared base of the long-tailed data modules.

A subclass reads its labels in ``__init__`` and calls :meth:`LongTailedDataModule._init_split`,
so ``class_counts`` and ``num_classes`` exist before ``setup()`` (the CLI links them into the
model at instantiation). It then provides datasets of ``(uint8 CHW image, label)`` through
:meth:`_make_dataset`. The base:

1. draws the long-tailed training subset (``splits.long_tailed_split``; ``profile="none"`` keeps
   the data's own distribution);
2. carves a stratified validation split of ``val_fraction`` from it (``val_fraction=0``
   validates on the test set, the usual CIFAR-LT protocol, which does no model selection), unless
   the dataset has its own validation split (``has_official_val``, e.g. MedMNIST), which is used;
3. serves loaders and turns uint8 batches into normalised floats on the device;
4. with ``device_data``, keeps the training images on the accelerator and augments each batch
   there (:mod:`lt_imbalance.data.device_augment`): the training loader then yields only indices,
   labels and augmentation seeds.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch.utils.data import DataLoader, Dataset

from lt_imbalance.data import device_augment
from lt_imbalance.data.augment import build_ssl_transform, build_train_transform, check_policy
from lt_imbalance.data.samplers import EpochSampler, SamplerName
from lt_imbalance.data.splits import Profile, check_imbalance_ratio, holdout_split, indices_hash, long_tailed_split, natural_split


@contextmanager
def seeded(key: Any) -> Iterator[int]:
    """``key`` is an index, or ``(index, seed)`` from :class:`~lt_imbalance.data.samplers.EpochSampler`:
    then the random transforms of that item draw from ``seed`` (and leave the global RNG as it was)."""
    if not isinstance(key, tuple):
        yield key
        return
    index, seed = key
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield index


class ResumingDataLoader(DataLoader):
    """A DataLoader whose iterator, when first asked for a batch, discards ``skip_fn()`` batches
    (the part of an epoch a resumed run has already trained on). The count is read lazily because
    Lightning creates the iterator before it restores the loop's progress."""

    def __init__(self, *args, skip_fn: Callable[[], int], **kwargs):
        super().__init__(*args, **kwargs)
        self.skip_fn = skip_fn

    def __iter__(self):
        return _SkipFirst(super().__iter__(), self.skip_fn)

    def state_dict(self) -> dict:
        """Nothing to save: the position is the loop's restored progress, the order a function of the
        epoch. (Having the method tells Lightning that this loader resumes mid-epoch correctly.)"""
        return {}

    def load_state_dict(self, state_dict: dict) -> None:
        """See :meth:`state_dict`."""


class _SkipFirst:
    def __init__(self, iterator, skip_fn: Callable[[], int]):
        self.iterator, self.skip_fn = iterator, skip_fn

    def __iter__(self):
        return self

    def __next__(self):
        if self.skip_fn is not None:
            skip, self.skip_fn = self.skip_fn(), None
            for _ in range(skip):
                next(self.iterator)
        return next(self.iterator)


class UInt8ImageDataset(Dataset):
    """Base of the image datasets: ``load(i)`` gives a uint8 ``[C, H, W]`` image; items are
    ``(transform(x), y)``, or ``(transform(x), y, view(x), view(x))`` when ``views`` is set (Joint-SSL).
    Keys may be ``(index, seed)`` pairs (see :func:`seeded`)."""

    labels: torch.Tensor

    def __init__(self, transform=None, views=None):
        self.transform, self.views = transform, views

    def __len__(self) -> int:
        return len(self.labels)

    def load(self, i: int) -> torch.Tensor:
        raise NotImplementedError

    def __getitem__(self, key):
        with seeded(key) as i:
            raw = self.load(i)
            x = raw if self.transform is None else self.transform(raw)
            if self.views is None:
                return x, self.labels[i]
            return x, self.labels[i], self.views(raw), self.views(raw)


class TensorImageDataset(UInt8ImageDataset):
    """uint8 images ``[N, C, H, W]`` and int64 labels held in memory."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform=None, views=None):
        super().__init__(transform, views)
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"images must be a uint8 tensor [N, C, H, W], got {images.dtype} {tuple(images.shape)}")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images, self.labels = images, labels.long()

    def load(self, i: int) -> torch.Tensor:
        return self.images[i]


class _IndexDataset(Dataset):
    """``device_data``'s training items: ``{"index", "label", "seed"}`` for an ``(index, seed)`` key."""

    def __init__(self, labels: torch.Tensor):
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, Any]:
        index, seed = key
        return {"index": index, "label": self.labels[index], "seed": seed}


class LongTailedDataModule(pl.LightningDataModule):
    """Base data module: long-tailed split, validation carve-out, loaders, on-device normalisation.

    Args:
        batch_size: images per optimisation step over all devices (the global batch); each of
            W devices loads batch_size / W (a warning says when W does not divide it).
        num_workers: DataLoader worker processes.
        augmentation: training policy name (``none``, ``standard``, ``autoaugment``,
            ``randaugment``, ``trivialaugment``; see :mod:`lt_imbalance.data.augment`).
        imbalance_ratio: rho = n_max / n_min of the training split (>= 1).
        profile: ``exponential``, ``step`` or ``none`` (keep the natural distribution).
        split_seed: seed of the long-tailed draw and the validation carve-out.
        val_fraction: stratified share of the long-tailed training split held out for
            validation (every class keeps at least one training image); 0 validates on the test set.
        ssl_views: also return two SimCLR-style views of every training image (Joint-SSL); the
            CLI sets it from ``model.init_args.ssl_weight``.
        sampler: ``random`` (shuffle), or re-sampling with replacement: ``class_balanced`` (every
            class equally likely) or ``square_root`` (:mod:`lt_imbalance.data.samplers`); either
            way the epoch's order is a function of (split_seed, global seed, epoch).
        device_data: hold the training images on the training device as uint8 and apply the
            augmentation policy (and SSL views) per batch there, each image with its own random
            parameters (:mod:`lt_imbalance.data.device_augment`); the augmentation of a batch is a
            function of its first sample's seed, so runs and resumes stay reproducible. Needs
            in-memory images; the GPU path for small images (no data-loader workers needed).
    """

    #: whether mirroring preserves the meaning of an image (False for digits)
    hflip = True
    #: set by subclasses whose data ships its own validation split (``_make_dataset("val", ...)``)
    has_official_val = False
    #: per-channel mean and std on the [0, 1] scale, set by subclasses
    mean: Sequence[float] = (0.5,)
    std: Sequence[float] = (0.5,)

    def __init__(
        self,
        batch_size: int = 128,
        num_workers: int = 0,
        augmentation: str = "standard",
        imbalance_ratio: float = 100.0,
        profile: Profile = "exponential",
        split_seed: int = 0,
        val_fraction: float = 0.1,
        ssl_views: bool = False,
        sampler: SamplerName = "random",
        device_data: bool = False,
    ):
        super().__init__()
        if sampler not in ("random", "class_balanced", "square_root"):
            raise ValueError(f"unknown sampler {sampler!r}; choose random, class_balanced or square_root")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        check_policy(augmentation)
        check_imbalance_ratio(imbalance_ratio)
        if profile == "none" and imbalance_ratio != 1:
            raise ValueError(
                f"profile 'none' keeps the data's own distribution, so imbalance_ratio={imbalance_ratio} "
                "would be ignored; set imbalance_ratio: 1, or choose profile 'exponential' or 'step'."
            )
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.augmentation = augmentation
        self.imbalance_ratio = imbalance_ratio
        self.profile = profile
        self.split_seed = split_seed
        self.val_fraction = val_fraction
        self.ssl_views = ssl_views
        self.sampler = sampler
        self.device_data = device_data
        self._resident: dict[torch.device, torch.Tensor] = {}
        self._generators: dict[torch.device, torch.Generator] = {}
        self._norm_cache: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    # ---- to be called / provided by subclasses -------------------------------------------
    def _init_split(self, pool_labels: np.ndarray, class_names: Sequence[str], image_size: int, num_channels: int) -> None:
        """Compute the training / validation indices into the training pool and the class counts."""
        pool_labels = np.asarray(pool_labels, dtype=np.int64)
        self._pool_labels = pool_labels
        self.class_names = [str(n) for n in class_names]
        self.num_classes = len(self.class_names)
        self.image_size = image_size
        self.num_channels = num_channels
        if self.profile == "none":
            split = natural_split(pool_labels, self.num_classes)
        else:
            split = long_tailed_split(pool_labels, self.num_classes, self.imbalance_ratio, self.profile, self.split_seed)
        if self.has_official_val and self.val_fraction > 0:
            raise ValueError(
                f"{type(self).__name__} has its own validation split; set val_fraction: 0 instead of {self.val_fraction}."
            )
        keep, held = holdout_split(pool_labels[split.indices], self.num_classes, self.val_fraction, self.split_seed + 1)
        self.train_indices = split.indices[keep]
        self.val_indices = split.indices[held]
        self.class_counts = np.bincount(pool_labels[self.train_indices], minlength=self.num_classes).tolist()
        self.val_counts = np.bincount(pool_labels[self.val_indices], minlength=self.num_classes).tolist()
        self.split_hash = indices_hash(np.concatenate([self.train_indices, [-1], self.val_indices]))
        if self.batch_size > len(self.train_indices):
            raise ValueError(
                f"batch_size={self.batch_size} is larger than the training split ({len(self.train_indices)} "
                "images); lower data.batch_size or the imbalance ratio."
            )

    def _make_dataset(self, part: str, indices: np.ndarray | None, transform, views=None) -> UInt8ImageDataset:
        """A dataset of ``(uint8 image, label[, view, view])`` for ``part`` ('train' pool or 'test'); ``None`` = all.

        The default serves in-memory subclasses that set ``self._pool``, ``self._test`` (and
        ``self._val`` with ``has_official_val``) to ``(uint8 images [N, C, H, W], labels)``;
        file-backed subclasses override it.
        """
        images, labels = {"train": self._pool, "test": self._test}.get(part) or self._val
        if indices is not None:
            images, labels = images[indices], labels[indices]
        return TensorImageDataset(images, labels, transform, views)

    def train_eval_dataset(self, max_per_class: int | None = None, seed: int = 0) -> Dataset:
        """The training split without augmentation or SSL views, for diagnostics: all of it, or a
        fixed random subset of at most ``max_per_class`` images per class (seeded, so every epoch and
        every rank sees the same images)."""
        indices = self.train_indices
        if max_per_class is not None:
            rng = np.random.default_rng(seed)
            labels = self._pool_labels[indices]
            chosen = [rng.permutation(np.flatnonzero(labels == c))[:max_per_class] for c in range(self.num_classes)]
            indices = indices[np.sort(np.concatenate(chosen))]
        return self._make_dataset("train", indices, None)

    # ---- Lightning hooks -----------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if hasattr(self, "test_set"):
            return
        transform = build_train_transform(self.augmentation, self.image_size, self.hflip)
        views = self._ssl_transform() if self.ssl_views else None
        self.train_set = self._make_dataset("train", self.train_indices, transform, views)
        self.test_set = self._make_dataset("test", None, None)
        if self.has_official_val:
            self.val_set = self._make_dataset("val", None, None)
        else:
            self.val_set = self._make_dataset("train", self.val_indices, None) if len(self.val_indices) else self.test_set
        self.test_counts = np.bincount(self._labels_of(self.test_set), minlength=self.num_classes).tolist()
        if self.device_data:
            self._setup_device_data()

    def _setup_device_data(self) -> None:
        """Batched device transforms in place of the per-sample ones; the loader serves indices."""
        if not isinstance(self.train_set, TensorImageDataset):
            raise ValueError(
                f"{type(self).__name__}: device_data needs the training images in memory, but this data module "
                "reads them from files per access; set data.init_args.in_memory: true (or device_data: false)."
            )
        self.train_set.transform = self.train_set.views = None
        self._device_transform = device_augment.build_train_transform(self.augmentation, self.image_size, self.hflip)
        self._device_views = device_augment.build_ssl_transform(self.image_size, self.hflip, self.num_channels) if self.ssl_views else None

    def _ssl_transform(self):
        """The per-sample SSL view of this data family (SimCLR-style for images)."""
        return build_ssl_transform(self.image_size, self.hflip, self.num_channels)

    @staticmethod
    def _labels_of(dataset: Dataset) -> np.ndarray:
        return np.asarray(dataset.labels)

    @property
    def per_device_batch_size(self) -> int:
        """batch_size / world size (floor, at least 1); warns when the world size does not divide it."""
        world = self.trainer.world_size if self.trainer is not None else 1
        if self.batch_size % world:
            rank_zero_warn(
                f"global batch_size={self.batch_size} is not divisible by {world} devices; each loads "
                f"{max(1, self.batch_size // world)}, so the effective batch is {max(1, self.batch_size // world) * world}."
            )
        return max(1, self.batch_size // world)

    def _eval_loader(self, dataset: Dataset) -> DataLoader:
        """Validation / test loader: in order, no augmentation."""
        return DataLoader(
            dataset,
            batch_size=self.per_device_batch_size,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
        )

    def train_dataloader(self) -> DataLoader:
        """Epoch order and augmentation are functions of (seed, epoch), and after a mid-epoch resume
        the batches already trained on are skipped, so a resumed run sees what an uninterrupted one would."""
        seed = self.split_seed * 1_000_003 + int(os.environ.get("PL_GLOBAL_SEED", 0))
        sampler = EpochSampler(self._labels_of(self.train_set), self.sampler, seed, self._epoch)
        workers = 0 if self.device_data else self.num_workers  # indices only: workers would cost more than they save
        return ResumingDataLoader(
            _IndexDataset(self.train_set.labels) if self.device_data else self.train_set,
            batch_size=self.per_device_batch_size,
            sampler=sampler,
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=torch.cuda.is_available(),
            generator=torch.Generator().manual_seed(seed),  # worker seeding leaves the global RNG alone
            skip_fn=self._batches_done_this_epoch,
        )

    def _epoch(self) -> int | None:
        return self.trainer.current_epoch if self.trainer is not None else None

    def _batches_done_this_epoch(self) -> int:
        """Batches of the current epoch already trained on: nonzero only when a run resumed mid-epoch
        (Lightning restores the epoch's progress before the first batch is fetched)."""
        trainer = self.trainer
        if trainer is None:
            return 0
        done = trainer.fit_loop.epoch_loop.batch_progress.current.ready
        return done if 0 < done < trainer.num_training_batches else 0

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader(self.val_set)

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader(self.test_set)

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """``device_data``: the batch's augmentation seed stays on the host (a Python int)."""
        if isinstance(batch, dict):
            batch["seed"] = int(batch["seed"][0])
        return batch

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """uint8 images (and SSL views) -> float, scaled to [0, 1] and normalised per channel, on the batch's device."""
        if isinstance(batch, dict):
            batch = self._augment_on_device(batch)
        return tuple(self._normalise(t) if i != 1 else t for i, t in enumerate(batch))

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

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.uint8:
            return x
        mean, std = self._norm_stats(x.device)
        return (x.float().div_(255.0) - mean) / std

    def _norm_stats(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if device not in self._norm_cache:
            shape = (1, -1, 1, 1)
            self._norm_cache[device] = (
                torch.tensor(self.mean, device=device).view(shape),
                torch.tensor(self.std, device=device).view(shape),
            )
        return self._norm_cache[device]

    # ---- reproducibility -----------------------------------------------------------------
    def _validation_source(self) -> str:
        if self.has_official_val:
            return "the dataset's own validation split"
        return "held-out training split" if len(self.val_indices) else "test set"

    @property
    def metadata(self) -> dict[str, Any]:
        """What a run must record to be reproduced: split parameters, counts and the split hash."""
        info = {
            "dataset": type(self).__name__,
            "class_names": self.class_names,
            "class_counts": self.class_counts,
            "val_counts": self.val_counts,
            "split_hash": self.split_hash,
            "split_seed": self.split_seed,
            "imbalance_ratio": self.imbalance_ratio,
            "profile": self.profile,
            "val_fraction": self.val_fraction,
            "validation_on": self._validation_source(),
            "augmentation": self.augmentation,
            "batch_size": self.batch_size,
            "ssl_views": self.ssl_views,
            "sampler": self.sampler,
            "device_data": self.device_data,
        }
        if hasattr(self, "test_counts"):
            info["test_counts"] = self.test_counts
        return info

