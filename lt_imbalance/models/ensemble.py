"""A weighted ensemble of trained classifiers as one network whose outputs are log-probabilities.

    p(y | x)  = sum_k w_k softmax(a_k(f_k(x)))      f_k member k's network, a_k its output adjustment
    forward(x) = log p(y | x)

Each member's output adjustment (its :class:`~lt_imbalance.post_processor.PostProcessor`: post-hoc
adjustment, calibration, re-weighting to a class prior q) is applied before the average, so when
every member is adjusted to the same q the average is a posterior under q, and its logarithm can be
read by another outputs owner like any network's logits (softmax of it gives ``p`` back).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class WeightedEnsemble(nn.Module):
    """``forward(x) = log sum_k w_k softmax(a_k(f_k(x)))`` (module docstring).

    Args:
        networks: the members' networks ``f_k`` (inputs -> logits), all for the same inputs and classes.
        adjustments: the members' output adjustments ``a_k``, each mapping logits to probabilities
            (a :class:`~lt_imbalance.post_processor.PostProcessor`, whose ``forward`` is that).
        weights: ``w_k`` (non-negative, normalised to sum 1).

    Examples:
        >>> first, second = nn.Linear(2, 3), nn.Linear(2, 3)
        >>> ensemble = WeightedEnsemble([first, second], [nn.Softmax(1), nn.Softmax(1)], [3.0, 1.0])
        >>> x = torch.randn(4, 2)
        >>> average = 0.75 * first(x).softmax(1) + 0.25 * second(x).softmax(1)
        >>> torch.allclose(ensemble(x).exp(), average)
        True
    """

    def __init__(self, networks: Sequence[nn.Module], adjustments: Sequence[nn.Module], weights: Sequence[float]):
        super().__init__()
        if not networks or len(networks) != len(adjustments) or len(networks) != len(weights):
            raise ValueError(f"one weight and one adjustment per network: {len(networks)} networks, {len(adjustments)}, {len(weights)}")
        w = torch.as_tensor(weights, dtype=torch.float64)
        if bool((w < 0).any()) or float(w.sum()) <= 0:
            raise ValueError(f"ensemble weights must be non-negative with a positive sum, got {list(weights)}")
        self.networks, self.adjustments = nn.ModuleList(networks), nn.ModuleList(adjustments)
        self.register_buffer("weights", (w / w.sum()).float())

    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """``p(y | x)``: the weighted average of the members' adjusted probabilities."""
        total = None
        for k, (network, adjust) in enumerate(zip(self.networks, self.adjustments)):
            p = self.weights[k] * adjust(network(x)).float()
            total = p if total is None else total + p
        return total

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.probabilities(x).clamp_min(torch.finfo(torch.float32).tiny).log()
