"""What a data family hands over to its data module (:class:`DatasetParts` of :class:`DataPart` s),
and the split the data module draws from it (:class:`TrainValSplit`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lt_imbalance.errors import BadValue


@dataclass(frozen=True)
class DataPart:
    """One part of a dataset: integer labels and the samples they belong to, in the same order.

    Args:
        labels: int64 class indices ``[N]``.
        samples: uint8 images ``[N, C, H, W]``, float feature rows ``[N, F]``, or ``N`` image file paths.
    """

    labels: np.ndarray
    samples: torch.Tensor | Sequence[Any]

    def __post_init__(self):
        labels = np.asarray(self.labels, dtype=np.int64)
        if labels.ndim != 1:
            raise BadValue(f"labels must be one-dimensional, got shape {labels.shape}")
        if len(labels) != len(self.samples):
            raise BadValue(f"{len(self.samples)} samples but {len(labels)} labels")
        object.__setattr__(self, "labels", labels)

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class DatasetParts:
    """What :meth:`LongTailedDataModule.load_data` returns.

    Args:
        class_names: one name per class; class c is ``class_names[c]``.
        pool: the training pool the long-tailed split is drawn from.
        test: the test set.
        val: the data's own validation set, if it ships one.
    """

    class_names: Sequence[str]
    pool: DataPart
    test: DataPart
    val: DataPart | None = None


@dataclass(frozen=True)
class TrainValSplit:
    """Positions into the pool of the training and validation samples, their class counts and a
    hash of the positions (saved with every run)."""

    train_indices: np.ndarray
    val_indices: np.ndarray
    class_counts: list[int]
    val_counts: list[int]
    hash: str
