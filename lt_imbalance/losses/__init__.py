"""Pure loss functions (no Lightning): usable from a plain PyTorch loop."""

from lt_imbalance.losses.cc_label_smoothing import cc_label_smoothing_loss, class_smoothing
from lt_imbalance.losses.imbalance import class_weights, focal_factor, ldam_margins, log_prior, weighted_mean

__all__ = ["cc_label_smoothing_loss", "class_smoothing", "class_weights", "focal_factor", "ldam_margins", "log_prior", "weighted_mean"]
