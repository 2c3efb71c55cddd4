"""Class-count arithmetic shared by the losses (plain PyTorch).

Notation: C classes, n_c training images of class c, prior pi_c = n_c / sum_k n_k.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from lt_imbalance.errors import BadValue


def counts_tensor(class_counts: Sequence[int] | None, needed_by: str) -> torch.Tensor:
    """``class_counts`` as float64, refusing a missing or non-positive count with the fix."""
    if class_counts is None:
        raise BadValue(
            f"{needed_by} needs class_counts (training images per class); the CLI links them from the data, "
            "in Python pass class_counts=data.class_counts."
        )
    counts = torch.as_tensor(list(class_counts), dtype=torch.float64)
    if counts.ndim != 1 or len(counts) < 2 or (counts <= 0).any():
        raise BadValue(f"{needed_by}: class_counts must list at least two positive counts, got {list(class_counts)}")
    return counts


def log_prior(class_counts: Sequence[int]) -> torch.Tensor:
    """log pi_c (float32)."""
    counts = counts_tensor(class_counts, "the log prior")
    return torch.log(counts / counts.sum()).float()
