"""Batch-level MixUp (Zhang et al. 2018) and CutMix (Yun et al. 2019), plain PyTorch.

For a batch x with labels y, a partner permutation pi and lambda ~ Beta(alpha, alpha):

- MixUp:  x' = lambda * x + (1 - lambda) * x[pi];
- CutMix: x' = x with a box of area (1 - lambda) * H * W pasted from x[pi]; lambda is then
  recomputed as 1 - (clipped box area) / (H * W).

The loss is lambda * l(f(x'), y) + (1 - lambda) * l(f(x'), y[pi]). Draws come from a generator
seeded per optimisation step, so SAM's ascent and descent passes see the same mixed batch.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def mix_batch(x: torch.Tensor, mixup_alpha: float, cutmix_alpha: float, seed: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    """``(x', pi, lambda)``; with both alphas > 0 each batch uses one of the two, chosen with p = 0.5."""
    rng = np.random.default_rng(seed)
    modes = [m for m, a in (("mixup", mixup_alpha), ("cutmix", cutmix_alpha)) if a > 0]
    if not modes:
        raise ValueError("mix_batch needs mixup_alpha > 0 or cutmix_alpha > 0")
    mode = modes[rng.integers(len(modes))]
    lam = float(rng.beta(mixup_alpha, mixup_alpha) if mode == "mixup" else rng.beta(cutmix_alpha, cutmix_alpha))
    perm = torch.from_numpy(rng.permutation(len(x))).to(x.device)
    if mode == "mixup":
        return lam * x + (1 - lam) * x[perm], perm, lam
    h, w = x.shape[-2:]
    cut_h, cut_w = int(h * math.sqrt(1 - lam)), int(w * math.sqrt(1 - lam))
    cy, cx = int(rng.integers(h)), int(rng.integers(w))
    top, bottom = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, h)
    left, right = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, w)
    mixed = x.clone()
    mixed[..., top:bottom, left:right] = x[perm][..., top:bottom, left:right]
    return mixed, perm, 1 - (bottom - top) * (right - left) / (h * w)
