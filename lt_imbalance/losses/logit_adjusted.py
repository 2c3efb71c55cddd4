"""Logit-adjusted cross-entropy (Menon et al. 2021); Balanced Softmax (Ren et al. 2020) at tau = 1.

With prior pi_c = n_c / sum_k n_k the loss trains on the adjusted logits

    z'_k = z_k + tau * log pi_k,

so at tau = 1 the model's softmax is p_y = n_y e^{z_y} / sum_k n_k e^{z_k} (Balanced Softmax).
The post-hoc variant (predict with z - tau * log pi) is the model's ``posthoc_adjust_tau``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from lt_imbalance.losses.class_counts import counts_tensor
from lt_imbalance.losses.cross_entropy import CrossEntropy


class LogitAdjustedLoss(CrossEntropy):
    """Cross-entropy on z + tau * log prior (per sample), with the label smoothing of :class:`CrossEntropy`.

    Args:
        class_counts: training images per class (gives the prior).
        tau: strength of the adjustment; 1 = Balanced Softmax.
        **smoothing: label-smoothing arguments of :class:`CrossEntropy`.

    Examples:
        >>> loss = LogitAdjustedLoss([90, 10], tau=1.0)
        >>> round(loss(torch.zeros(1, 2), torch.tensor([1])).item(), 4)  # -log(0.1)
        2.3026
    """

    def __init__(self, class_counts: Sequence[int] | None, tau: float = 1.0, **smoothing):
        super().__init__(class_counts, **smoothing)
        self.tau = tau
        counts = counts_tensor(class_counts, "the logit-adjusted loss (Balanced Softmax)")
        self.register_buffer("log_prior", torch.log(counts / counts.sum()).float(), persistent=False)

    def adjust_logits(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return logits + self.tau * self.log_prior


class BalancedSoftmaxLoss(LogitAdjustedLoss):
    """Balanced Softmax (Ren et al. 2020): :class:`LogitAdjustedLoss` with tau = 1.

    Args:
        class_counts: training images per class.
        **smoothing: label-smoothing arguments of :class:`CrossEntropy`.
    """

    def __init__(self, class_counts: Sequence[int] | None, **smoothing):
        super().__init__(class_counts, tau=1.0, **smoothing)
