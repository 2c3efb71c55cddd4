"""SAM / SAM-A perturbation math in plain PyTorch (no Lightning).

For a batch with per-sample losses l_i and labels y_i (Shwartz-Ziv et al. 2023, section 5.3):

1. ascent loss L_a = sum_i a_{y_i} l_i / sum_i a_{y_i}, class weights a_c = (n_max / n_c)^gamma;
2. e = rho * g_a / ||g_a||_2 with g_a = grad L_a (global norm over all parameters);
   adaptive SAM (Kwon et al. 2021): e = rho * T^2 g_a / ||T g_a||_2 with T = |w| + eta, elementwise;
3. the descent gradient g = grad L(w + e) of the ordinary training loss;
4. w <- w - e (restored from a copy), then the ordinary optimizer step with g.

gamma = 0 is plain SAM (Foret et al. 2021), gamma = 1 SAM-A as in the authors' code; the
``tail_only`` weighting (a_c = 1 for classes with fewer than ``tail_below`` images, else 0) is
ImbSAM (Zhou et al. 2023). Because e is normalised, only the relative weights matter.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

import torch

from lt_imbalance.errors import BadValue

Weighting = Literal["power", "tail_only"]


def ascent_class_weights(
    class_counts: Sequence[int] | None,
    gamma: float = 1.0,
    weighting: Weighting = "power",
    tail_below: int = 20,
    max_weight: float | None = None,
) -> torch.Tensor | None:
    """a_c of step 1 (``None`` means uniform: plain SAM). ``max_weight`` caps a_c (a per-class cap)."""
    if weighting == "power" and gamma == 0:
        return None
    if class_counts is None:
        raise BadValue("SAM-A needs the model's class_counts (linked from the data by the CLI); set gamma: 0 for plain SAM")
    counts = torch.as_tensor(list(class_counts), dtype=torch.float64)
    if weighting == "power":
        weights = (counts.max() / counts).pow(gamma)
    elif weighting == "tail_only":
        weights = (counts < tail_below).double()
        if weights.sum() == 0:
            raise BadValue(f"tail_only weighting: no class has fewer than tail_below={tail_below} training images")
    else:
        raise BadValue(f"unknown ascent weighting {weighting!r}; choose 'power' or 'tail_only'")
    if max_weight is not None:
        weights = weights.clamp(max=max_weight)
    return weights.float()


def perturbation(params: Sequence[torch.nn.Parameter], rho: float, adaptive: bool = False, eta: float = 0.01) -> list[torch.Tensor]:
    """e of step 2 from the parameters' current ``.grad`` (zero where the gradient norm is zero)."""
    grads = [p.grad.detach().float() for p in params]
    if adaptive:
        scales = [p.detach().float().abs() + eta for p in params]
        scaled = [s * g for s, g in zip(scales, grads)]
    else:
        scales, scaled = None, grads
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in scaled])) if scaled else torch.tensor(0.0)
    if not torch.isfinite(norm) or norm == 0:
        return [torch.zeros_like(p) for p in params]
    factor = rho / norm
    if adaptive:
        return [(s * s * g * factor).to(p.dtype) for s, g, p in zip(scales, grads, params)]
    return [(g * factor).to(p.dtype) for g, p in zip(grads, params)]


@torch.no_grad()
def add_perturbation(params: Iterable[torch.nn.Parameter], offsets: Iterable[torch.Tensor]) -> None:
    """w <- w + e, in place."""
    for p, e in zip(params, offsets):
        p.add_(e)
