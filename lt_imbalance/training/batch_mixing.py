"""Batch-level MixUp (Zhang et al. 2018) and CutMix (Yun et al. 2019), plain PyTorch.

For a batch x with labels y, a partner permutation pi and lambda ~ Beta(alpha, alpha):

- MixUp:  x' = lambda * x + (1 - lambda) * x[pi];
- CutMix: x' = x with a box of area (1 - lambda) * H * W pasted from x[pi]; lambda is then
  recomputed as 1 - (clipped box area) / (H * W).

The loss is lambda * l(f(x'), y) + (1 - lambda) * l(f(x'), y[pi]). Draws come from a generator
seeded per optimisation step, so SAM's ascent and descent passes see the same mixed batch.

SAM-A weights a sample's ascent loss by its class weight a_y; a mixed sample belongs to class
y with share lambda and to y[pi] with share 1 - lambda, so it is weighted by
lambda * a_y + (1 - lambda) * a_{y[pi]} (:func:`mixed_sample_weights`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from lt_imbalance.errors import BadValue


@dataclass(frozen=True)
class MixDraw:
    """One draw of a batch's mixing: the partner permutation pi, lambda and, for CutMix, the box
    ``(top, bottom, left, right)`` pasted from the partner (``None`` for MixUp)."""

    perm: torch.Tensor
    lam: float
    box: tuple[int, int, int, int] | None


def draw_mix(batch_size: int, height: int, width: int, mixup_alpha: float, cutmix_alpha: float, seed: int) -> MixDraw:
    """The draw of a batch of ``batch_size`` images of ``height`` x ``width``; with both alphas > 0 each
    batch uses MixUp or CutMix with p = 0.5. A function of its arguments alone."""
    rng = np.random.default_rng(seed)
    modes = [m for m, a in (("mixup", mixup_alpha), ("cutmix", cutmix_alpha)) if a > 0]
    if not modes:
        raise BadValue("mixing needs mixup_alpha > 0 or cutmix_alpha > 0")
    mode = modes[rng.integers(len(modes))]
    lam = float(rng.beta(mixup_alpha, mixup_alpha) if mode == "mixup" else rng.beta(cutmix_alpha, cutmix_alpha))
    perm = torch.from_numpy(rng.permutation(batch_size))
    if mode == "mixup":
        return MixDraw(perm, lam, None)
    cut_h, cut_w = int(height * math.sqrt(1 - lam)), int(width * math.sqrt(1 - lam))
    cy, cx = int(rng.integers(height)), int(rng.integers(width))
    top, bottom = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, height)
    left, right = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, width)
    return MixDraw(perm, 1 - (bottom - top) * (right - left) / (height * width), (top, bottom, left, right))


def apply_mix(x: torch.Tensor, draw: MixDraw) -> torch.Tensor:
    """x' of the module docstring for ``draw``."""
    perm = draw.perm.to(x.device)
    if draw.box is None:
        return draw.lam * x + (1 - draw.lam) * x[perm]
    top, bottom, left, right = draw.box
    mixed = x.clone()
    mixed[..., top:bottom, left:right] = x[perm][..., top:bottom, left:right]
    return mixed


def mix_batch(x: torch.Tensor, mixup_alpha: float, cutmix_alpha: float, seed: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    """``(x', pi, lambda)`` of a batch ``x`` of images ``[B, C, H, W]`` (or feature rows for MixUp)."""
    height, width = (x.shape[-2], x.shape[-1]) if x.ndim >= 3 else (1, 1)
    draw = draw_mix(len(x), height, width, mixup_alpha, cutmix_alpha, seed)
    return apply_mix(x, draw), draw.perm.to(x.device), draw.lam


def mixed_sample_weights(class_weights: torch.Tensor, y: torch.Tensor, perm: torch.Tensor, lam: float) -> torch.Tensor:
    """lambda * a_{y_i} + (1 - lambda) * a_{y_{pi(i)}}: the class weight of each mixed sample."""
    a = class_weights.to(y.device)
    return lam * a[y] + (1 - lam) * a[y[perm]]


@dataclass
class Mixing:
    """Batch-level MixUp / CutMix of the training images (module docstring).

    Args:
        mixup_alpha: alpha of MixUp's Beta(alpha, alpha); 0 = off.
        cutmix_alpha: alpha of CutMix's Beta(alpha, alpha); 0 = off. With both on, each batch uses one.
    """

    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0

    def __post_init__(self):
        if self.mixup_alpha < 0 or self.cutmix_alpha < 0:
            raise BadValue(f"mixing alphas must be >= 0, got mixup_alpha={self.mixup_alpha}, cutmix_alpha={self.cutmix_alpha}")

    @property
    def enabled(self) -> bool:
        return self.mixup_alpha > 0 or self.cutmix_alpha > 0
