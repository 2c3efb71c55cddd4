"""LDAM: label-distribution-aware margin loss (Cao et al. 2019).

Per-class margins m_c = M * n_c^{-1/4} / max_k n_k^{-1/4} (the largest margin M for the rarest
class); a sample of class y is trained on s * (z - m_y * onehot(y)) with scale s (30 in the authors'
code, with a cosine classifier: ``head: cosine`` in the model). DRW (deferred re-weighting) composes
through the model's ``reweighting``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from lt_imbalance.errors import BadValue
from lt_imbalance.losses.class_counts import counts_tensor
from lt_imbalance.losses.cross_entropy import CrossEntropy


def ldam_margins(class_counts: Sequence[int], max_margin: float = 0.5) -> torch.Tensor:
    """m_c = M * n_c^{-1/4} / max_k n_k^{-1/4}."""
    raw = counts_tensor(class_counts, "LDAM").pow(-0.25)
    return (raw * (max_margin / raw.max())).float()


class LDAMLoss(CrossEntropy):
    """Cross-entropy on s * (z - m_y onehot(y)), with the label smoothing of :class:`CrossEntropy`.

    Args:
        class_counts: training images per class (gives the margins).
        max_margin: M, the margin of the rarest class.
        scale: s, the logit scale (use with a cosine classifier, whose logits lie in [-1, 1]).
        **smoothing: label-smoothing arguments of :class:`CrossEntropy`.

    Examples:
        >>> LDAMLoss([16, 1], max_margin=0.5).margins.tolist()
        [0.25, 0.5]
    """

    def __init__(self, class_counts: Sequence[int] | None, max_margin: float = 0.5, scale: float = 30.0, **smoothing):
        super().__init__(class_counts, **smoothing)
        if scale <= 0:
            raise BadValue(f"LDAM scale must be > 0, got {scale}")
        self.scale = scale
        self.register_buffer("margins", ldam_margins(class_counts, max_margin), persistent=False)

    def adjust_logits(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        margin = F.one_hot(targets, logits.shape[1]) * self.margins[targets][:, None]
        return self.scale * (logits - margin)
