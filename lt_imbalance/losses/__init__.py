"""Pure loss functions (no Lightning): usable from a plain PyTorch loop."""

from lt_imbalance.losses.cc_label_smoothing import cc_label_smoothing_loss, class_smoothing

__all__ = ["cc_label_smoothing_loss", "class_smoothing"]
