"""Class-conditional label smoothing (CC-LS; Shwartz-Ziv et al. 2023, section 5.2; DESIGN.md section 3).

With C classes, n_c training images of class c, n_max = max n_c, n_min = min n_c:

    t_c   = log(n_max / n_c) / log(n_max / n_min)      (0 for the largest class, 1 for the smallest;
                                                        all 0 when the data is balanced)
    eps_c = eps_head + (eps_tail - eps_head) * t_c^p

A sample of class y gets the target q = (1 - eps_y) * onehot(y) + eps_y / C, so its loss is

    l = -(1 - eps_y) * log p_y - (eps_y / C) * sum_k log p_k.

With eps_head == eps_tail this equals ``F.cross_entropy(..., label_smoothing=eps)``. Minority
classes are smoothed *more* (the opposite of MiSLAS).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F


def class_smoothing(class_counts: Sequence[int], eps_head: float, eps_tail: float, power: float = 1.0) -> torch.Tensor:
    """Per-class smoothing eps_c (formula above) as a float tensor of length C."""
    for name, eps in (("eps_head", eps_head), ("eps_tail", eps_tail)):
        if not 0 <= eps < 1:
            raise ValueError(f"label smoothing {name} must lie in [0, 1), got {eps}")
    if power <= 0:
        raise ValueError(f"label smoothing power must be > 0, got {power}")
    counts = torch.as_tensor(list(class_counts), dtype=torch.float64)
    if (counts <= 0).any():
        raise ValueError("class counts must be positive to compute class-conditional label smoothing")
    n_max, n_min = counts.max(), counts.min()
    if n_max == n_min:
        t = torch.zeros_like(counts)
    else:
        t = torch.log(n_max / counts) / math.log(n_max / n_min)
    return (eps_head + (eps_tail - eps_head) * t.pow(power)).float()


def cc_label_smoothing_loss(logits: torch.Tensor, targets: torch.Tensor, eps_per_class: torch.Tensor) -> torch.Tensor:
    """Per-sample CC-LS cross-entropy (formula above); ``eps_per_class`` has one value per class."""
    log_p = F.log_softmax(logits.float(), dim=1)
    eps = eps_per_class.to(log_p.device)[targets]
    nll = -log_p.gather(1, targets[:, None]).squeeze(1)
    return (1 - eps) * nll - eps * log_p.mean(1)
