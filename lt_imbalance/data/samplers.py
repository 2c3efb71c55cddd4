"""Re-sampling of the training split (a specialised baseline; Kang et al. 2020, "Decoupling
Representation and Classifier").

Each epoch draws N = len(split) indices with replacement, sample i with probability
proportional to n_{y_i}^(-q): q = 1 (``class_balanced``) makes every class equally likely;
q = 1/2 (``square_root``) makes class c appear with probability proportional to sqrt(n_c).

DDP: the draw depends only on (seed, epoch), so every rank draws the same sequence and
Lightning's ``DistributedSamplerWrapper`` hands each rank a disjoint share of it.
"""

from __future__ import annotations

from typing import Iterator, Literal, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler

SamplerName = Literal["random", "class_balanced", "square_root"]


class ClassBalancedSampler(Sampler[int]):
    """Weighted sampling with replacement, q = 1 (``class_balanced``) or 1/2 (``square_root``)."""

    def __init__(self, labels: Sequence[int] | np.ndarray, mode: SamplerName = "class_balanced", seed: int = 0):
        labels = np.asarray(labels, dtype=np.int64)
        if mode not in ("class_balanced", "square_root"):
            raise ValueError(f"unknown sampler {mode!r}; choose random, class_balanced or square_root")
        counts = np.bincount(labels)
        power = 1.0 if mode == "class_balanced" else 0.5
        self.weights = torch.from_numpy(counts[labels].astype(np.float64) ** -power)
        self.seed, self.epoch = seed, 0

    def __len__(self) -> int:
        return len(self.weights)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + 7919 * self.epoch)
        self.epoch += 1
        yield from torch.multinomial(self.weights, len(self.weights), replacement=True, generator=generator).tolist()
