"""Specialised long-tail losses and class weights, plain PyTorch (no Lightning).

Notation: C classes, n_c training images of class c, prior pi_c = n_c / sum_k n_k, logits z.

- **Inverse-frequency weights**: w_c = (1 / n_c) * C / sum_k (1 / n_k) (mean weight 1).
- **Effective-number weights** (Cui et al. 2019, "Class-Balanced Loss Based on Effective Number
  of Samples"): E_c = (1 - beta^{n_c}) / (1 - beta), w_c = (1 / E_c) * C / sum_k (1 / E_k).
- **Logit adjustment** (Menon et al. 2021) / **Balanced Softmax** (Ren et al. 2020, tau = 1):
  train on z + tau * log pi; post-hoc, predict with z - tau * log pi.
- **LDAM** (Cao et al. 2019): margins m_c = M * n_c^{-1/4} / max_k n_k^{-1/4} (largest margin M);
  train on s * (z - m_y * onehot(y)) with scale s (30 in the authors' code, with a cosine classifier).
- **Focal loss** (Lin et al. 2017): l = (1 - p_y)^gamma * CE, p_y the softmax probability of the
  true class; with label smoothing the cross-entropy term uses the smoothed target.
- **Weighted mean** (all of the above, as ``torch.nn.functional.cross_entropy(weight=w)``):
  L = sum_i w_{y_i} l_i / sum_i w_{y_i}.
"""

from __future__ import annotations

from typing import Literal, Sequence

import torch
import torch.nn.functional as F

Weighting = Literal["none", "inverse", "effective"]


def _counts(class_counts: Sequence[int]) -> torch.Tensor:
    counts = torch.as_tensor(list(class_counts), dtype=torch.float64)
    if (counts <= 0).any():
        raise ValueError("every class needs at least one training image for re-weighting or logit adjustment")
    return counts


def class_weights(class_counts: Sequence[int], kind: Weighting, beta: float = 0.9999) -> torch.Tensor | None:
    """w_c of the module docstring (``None`` for ``kind="none"``), normalised to mean 1."""
    if kind == "none":
        return None
    counts = _counts(class_counts)
    if kind == "inverse":
        raw = 1.0 / counts
    elif kind == "effective":
        if not 0 <= beta < 1:
            raise ValueError(f"effective-number beta must lie in [0, 1), got {beta}")
        raw = (1 - beta) / (1 - torch.pow(beta, counts))
    else:
        raise ValueError(f"unknown class weighting {kind!r}; choose none, inverse or effective")
    return (raw * len(counts) / raw.sum()).float()


def log_prior(class_counts: Sequence[int]) -> torch.Tensor:
    """log pi_c."""
    counts = _counts(class_counts)
    return torch.log(counts / counts.sum()).float()


def ldam_margins(class_counts: Sequence[int], max_margin: float = 0.5) -> torch.Tensor:
    """m_c = M * n_c^{-1/4} / max_k n_k^{-1/4}."""
    raw = _counts(class_counts).pow(-0.25)
    return (raw * (max_margin / raw.max())).float()


def focal_factor(logits: torch.Tensor, targets: torch.Tensor, gamma: float) -> torch.Tensor:
    """(1 - p_y)^gamma per sample."""
    p_y = F.softmax(logits.float(), dim=1).gather(1, targets[:, None]).squeeze(1)
    return (1 - p_y).clamp_min(0).pow(gamma)


def weighted_mean(losses: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """sum_i w_{y_i} l_i / sum_i w_{y_i} (the plain mean without weights)."""
    if weights is None:
        return losses.mean()
    w = weights.to(losses.device)[targets]
    return (w * losses).sum() / w.sum().clamp_min(1e-12)
