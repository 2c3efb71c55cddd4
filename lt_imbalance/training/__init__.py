"""Training pieces in plain PyTorch (no Lightning): the learning-rate schedule, batch mixing and
the SAM perturbation math. The Lightning side (:mod:`lt_imbalance.module`,
:mod:`lt_imbalance.callbacks`) applies them."""
