"""Cross-entropy with class-conditional label smoothing (CC-LS; Shwartz-Ziv et al. 2023, section 5.2).

With C classes, n_c training images of class c, n_max = max n_c, n_min = min n_c:

    t_c   = log(n_max / n_c) / log(n_max / n_min)      (0 for the largest class, 1 for the smallest;
                                                        all 0 when the data is balanced)
    eps_c = eps_head + (eps_tail - eps_head) * t_c^p

A sample of class y gets the target q = (1 - eps_y) * onehot(y) + eps_y / C, so its loss is

    l = -(1 - eps_y) * log p_y - (eps_y / C) * sum_k log p_k.

With eps_head == eps_tail this equals ``F.cross_entropy(..., label_smoothing=eps)``. Minority
classes are smoothed *more* (the opposite of MiSLAS). A schedule may scale every eps_c by
s in [0, 1] during training (:class:`~lt_imbalance.callbacks.LabelSmoothingSchedule` sets
:attr:`CrossEntropy.smoothing_scale`).

:class:`CrossEntropy` is also the base of the specialised losses: they change the logits
(:meth:`CrossEntropy.adjust_logits`) or weight the per-sample loss, and keep the smoothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lt_imbalance.errors import BadValue
from lt_imbalance.losses.class_counts import counts_tensor


def class_smoothing(class_counts: Sequence[int], eps_head: float, eps_tail: float, power: float = 1.0) -> torch.Tensor:
    """Per-class smoothing eps_c (formula above) as a float tensor of length C."""
    for name, eps in (("eps_head", eps_head), ("eps_tail", eps_tail)):
        if not 0 <= eps < 1:
            raise BadValue(f"label smoothing {name} must lie in [0, 1), got {eps}")
    if power <= 0:
        raise BadValue(f"label smoothing power must be > 0, got {power}")
    counts = counts_tensor(class_counts, "class-conditional label smoothing")
    n_max, n_min = counts.max(), counts.min()
    if n_max == n_min:
        t = torch.zeros_like(counts)
    else:
        t = torch.log(n_max / counts) / math.log(n_max / n_min)
    return (eps_head + (eps_tail - eps_head) * t.pow(power)).float()


def cc_label_smoothing_loss(logits: torch.Tensor, targets: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Per-sample CC-LS cross-entropy (formula above); ``eps`` has one value per class, or is a scalar."""
    log_p = F.log_softmax(logits.float(), dim=1)
    eps = eps.to(log_p.device)
    eps_y = eps[targets] if eps.ndim else eps
    nll = -log_p.gather(1, targets[:, None]).squeeze(1)
    return (1 - eps_y) * nll - eps_y * log_p.mean(1)


class CrossEntropy(nn.Module):
    """Per-sample cross-entropy with (class-conditional) label smoothing.

    ``forward(logits [B, C], targets [B]) -> losses [B]``: one loss per sample, so that class
    re-weighting (:mod:`lt_imbalance.losses.reweighting`) and SAM-A can weight them.

    Args:
        class_counts: training images per class; needed only for class-conditional smoothing.
        label_smoothing: eps of the largest class (of every class if ``label_smoothing_tail`` is unset).
        label_smoothing_tail: eps of the smallest class (class-conditional smoothing, CC-LS).
        label_smoothing_power: exponent p of the interpolation t_c^p.

    Examples:
        >>> loss = CrossEntropy([100, 10, 1], label_smoothing=0.0, label_smoothing_tail=0.2)
        >>> loss.class_eps.tolist()
        [0.0, 0.10000000149011612, 0.20000000298023224]
        >>> loss(torch.zeros(2, 3), torch.tensor([0, 2])).shape
        torch.Size([2])
    """

    def __init__(
        self,
        class_counts: Sequence[int] | None = None,
        label_smoothing: float = 0.0,
        label_smoothing_tail: float | None = None,
        label_smoothing_power: float = 1.0,
    ):
        super().__init__()
        tail = label_smoothing if label_smoothing_tail is None else label_smoothing_tail
        if class_counts is None and tail != label_smoothing:
            raise BadValue("class-conditional label smoothing (label_smoothing_tail) needs class_counts")
        if class_counts is None:
            eps = class_smoothing([1, 1], label_smoothing, tail, label_smoothing_power)[0]
        else:
            eps = class_smoothing(class_counts, label_smoothing, tail, label_smoothing_power)
        self.register_buffer("class_eps", eps, persistent=False)
        #: multiplier of every eps_c, set by the label-smoothing schedule (1 = as configured)
        self.smoothing_scale = 1.0

    def adjust_logits(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The logits the cross-entropy sees; the identity here, changed by the specialised losses."""
        return logits

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        z = self.adjust_logits(logits, targets)
        eps = self.class_eps * self.smoothing_scale
        if bool((eps > 0).any()):
            return cc_label_smoothing_loss(z, targets, eps)
        return F.cross_entropy(z.float(), targets, reduction="none")
