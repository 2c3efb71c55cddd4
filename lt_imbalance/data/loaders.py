"""The loaders of a long-tailed data module: a training order and augmentation that are functions of
(seed, epoch), a resumed epoch that skips the batches already trained on, and in-order evaluation.

:class:`EpochLoaders` is a part of :class:`~lt_imbalance.data.base.LongTailedDataModule`, kept in
its own file: it reads the module's ``batch_size``, ``num_workers``, ``sampler``, ``split_seed``,
``trainer`` and the ``train_set`` / ``val_set`` / ``test_set`` that ``setup`` builds.
"""

from __future__ import annotations

import math
import os

import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch.utils.data import DataLoader, Dataset

from lt_imbalance.data.loading import ResumingDataLoader
from lt_imbalance.data.samplers import EpochSampler
from lt_imbalance.lightning_compat import batches_done_this_epoch


class EpochLoaders:
    """Lightning's loader hooks of a long-tailed data module (module docstring)."""

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

    def eval_loader(self, dataset: Dataset) -> DataLoader:
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
        the batches already trained on are skipped, so a resumed run sees what an uninterrupted one would.
        A last batch of a single sample (BatchNorm cannot train on it) is dropped; other last batches are kept."""
        seed = self.split_seed * 1_000_003 + int(os.environ.get("PL_GLOBAL_SEED", 0))
        sampler = EpochSampler(self.train_set.labels.numpy(), self.sampler, seed, self._epoch)
        dataset, workers = self.training_items()
        batch, world = self.per_device_batch_size, self.trainer.world_size if self.trainer is not None else 1
        return ResumingDataLoader(
            dataset,
            batch_size=batch,
            sampler=sampler,
            drop_last=math.ceil(len(sampler) / world) % batch == 1,  # a last batch of one breaks BatchNorm: dropped (only then)
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=torch.cuda.is_available(),
            generator=torch.Generator().manual_seed(seed),  # worker seeding leaves the global RNG alone
            skip_fn=self._batches_done_this_epoch,
            collate_fn=self.train_collate_fn(),
        )

    def train_collate_fn(self):
        """How the training loader batches items (None: PyTorch's default)."""
        return None

    def training_items(self) -> tuple[Dataset, int]:
        """The dataset the training loader draws from and its number of workers."""
        return self.train_set, self.num_workers

    def _epoch(self) -> int | None:
        return self.trainer.current_epoch if self.trainer is not None else None

    def _batches_done_this_epoch(self) -> int:
        return batches_done_this_epoch(self.trainer) if self.trainer is not None else 0

    def val_dataloader(self) -> DataLoader:
        return self.eval_loader(self.val_set)

    def test_dataloader(self) -> DataLoader:
        return self.eval_loader(self.test_set)
