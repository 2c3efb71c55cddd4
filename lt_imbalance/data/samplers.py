"""The order of the training split, and re-sampling (a specialised baseline; Kang et al. 2020,
"Decoupling Representation and Classifier").

:class:`EpochSampler` draws each epoch's order from (seed, epoch) alone and gives every draw its
own augmentation seed, so an epoch can be replayed exactly: after a resume, on any rank, with any
number of workers. Modes:

- ``random``: a permutation of the split (plain shuffling);
- ``class_balanced`` / ``square_root``: N = len(split) indices drawn with replacement, sample i
  with probability proportional to n_{y_i}^(-q), q = 1 (every class equally likely) or q = 1/2
  (class c appears with probability proportional to sqrt(n_c)).

DDP: every rank draws the same sequence and Lightning's ``DistributedSamplerWrapper`` hands each
rank a disjoint share of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Sampler

from lt_imbalance.errors import BadValue

SamplerName = Literal["random", "class_balanced", "square_root"]


class EpochSampler(Sampler[tuple[int, int]]):
    """Yields ``(index, augmentation seed)`` pairs; the epoch comes from ``epoch_fn`` (the trainer's
    epoch) or, where it has none (``None``), counts the passes."""

    def __init__(
        self,
        labels: Sequence[int] | np.ndarray,
        mode: SamplerName = "random",
        seed: int = 0,
        epoch_fn: Callable[[], int | None] | None = None,
    ):
        labels = np.asarray(labels, dtype=np.int64)
        if mode not in ("random", "class_balanced", "square_root"):
            raise BadValue(f"unknown sampler {mode!r}; choose random, class_balanced or square_root")
        self.mode, self.seed, self.epoch_fn, self.passes = mode, seed, epoch_fn, 0
        self.n = len(labels)
        if mode != "random":
            counts = np.bincount(labels)
            power = 1.0 if mode == "class_balanced" else 0.5
            self.weights = torch.from_numpy(counts[labels].astype(np.float64) ** -power)

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.epoch_fn() if self.epoch_fn is not None else None
        epoch = self.passes if epoch is None else epoch
        self.passes += 1
        generator = torch.Generator().manual_seed(self.seed + 7919 * epoch)
        if self.mode == "random":
            order = torch.randperm(self.n, generator=generator)
        else:
            order = torch.multinomial(self.weights, self.n, replacement=True, generator=generator)
        seeds = torch.randint(0, 2**62, (self.n,), generator=generator)
        yield from zip(order.tolist(), seeds.tolist())
