"""Supervised losses as components (plain PyTorch, no Lightning), one per file.

Each is an ``nn.Module`` built from the training class counts whose ``forward(logits, targets)``
returns one loss per sample, so that class re-weighting (:mod:`.reweighting`) and SAM-A can
weight samples. All of them keep (class-conditional) label smoothing from :class:`CrossEntropy`.

In a config, ``model.init_args.loss`` is a short name of :data:`LOSSES` or any such module by
``class_path`` (its first argument receives the class counts)::

    loss: balanced_softmax
    loss:
      class_path: LDAMLoss
      init_args: {max_margin: 0.5, scale: 30.0}
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import nn

from lt_imbalance.errors import BadValue
from lt_imbalance.losses.class_counts import log_prior
from lt_imbalance.losses.cross_entropy import CrossEntropy, cc_label_smoothing_loss, class_smoothing
from lt_imbalance.losses.focal import FocalLoss, focal_factor
from lt_imbalance.losses.joint_ssl import ContrastiveObjective, JointSSL
from lt_imbalance.losses.ldam import LDAMLoss, ldam_margins
from lt_imbalance.losses.logit_adjusted import BalancedSoftmaxLoss, LogitAdjustedLoss
from lt_imbalance.losses.reweighting import Reweighting, class_weights, weighted_mean

#: builds a per-sample loss from the class counts (``None`` when the model has none)
LossFactory = Callable[[Sequence[int] | None], nn.Module]

#: short names accepted by ``model.init_args.loss`` (each with its default arguments)
LOSSES: dict[str, LossFactory] = {
    "ce": CrossEntropy,
    "focal": FocalLoss,
    "ldam": LDAMLoss,
    "logit_adjusted": LogitAdjustedLoss,
    "balanced_softmax": BalancedSoftmaxLoss,
}


def build_loss(loss: str | LossFactory, class_counts: Sequence[int] | None) -> nn.Module:
    """The loss module of a short name or a factory (e.g. a class given by ``class_path``)."""
    if isinstance(loss, str):
        if loss not in LOSSES:
            raise BadValue(
                f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}, or give a class_path to an "
                "nn.Module whose first argument is class_counts and whose forward returns one loss per sample."
            )
        loss = LOSSES[loss]
    return loss(class_counts)


__all__ = [
    "LOSSES",
    "BalancedSoftmaxLoss",
    "ContrastiveObjective",
    "CrossEntropy",
    "FocalLoss",
    "JointSSL",
    "LDAMLoss",
    "LogitAdjustedLoss",
    "LossFactory",
    "Reweighting",
    "build_loss",
    "cc_label_smoothing_loss",
    "class_smoothing",
    "class_weights",
    "focal_factor",
    "ldam_margins",
    "log_prior",
    "weighted_mean",
]
