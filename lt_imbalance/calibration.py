"""Temperature scaling (Guo et al. 2017): one scalar T that calibrates a classifier's probabilities.

    p_T(y | x) = softmax(z(x) / T)_y,        T* = argmin_T  -(1/N) sum_i log p_T(y_i | x_i)

fitted on held-out logits ``z`` (the validation split, after any post-hoc adjustment). With
s = 1 / T the negative log-likelihood NLL(s) = mean_i [logsumexp(s z_i) - s z_i,y_i] is convex in
s (a log-sum-exp of a linear map plus a linear term), and its derivative

    dNLL/ds = mean_i [ sum_c p_s(c | x_i) z_i,c  -  z_i,y_i ]

increases with s, so T* is found by bisection on the sign of the derivative (over log s), to
machine precision and deterministically; the argmax, and so accuracy, never changes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from lt_imbalance.errors import BadValue

#: checkpoint key of the calibration record (written when ``fit`` ends)
CALIBRATION_KEY = "lt_imbalance_calibration"


@dataclass(frozen=True)
class Calibration:
    """How a trained model's outputs are to be read: its temperature and the class prior they assume.

    Args:
        temperature: T of ``softmax(z / T)``; 1 when not calibrated.
        model_prior: p_model(y), the class prior the (calibrated) outputs assume, or ``None`` when unknown.
        prior_source: how ``model_prior`` was obtained, in words.
        fitted_on: the split T was fitted on, or ``None``.
        not_calibrated: why no temperature was fitted (``None`` when one was).
        before: ``{"ece", "nll"}`` on ``fitted_on`` with T = 1.
        after: the same with the fitted T.
    """

    temperature: float = 1.0
    model_prior: tuple[float, ...] | None = None
    prior_source: str = ""
    fitted_on: str | None = None
    not_calibrated: str | None = None
    before: dict[str, float] = field(default_factory=dict)
    after: dict[str, float] = field(default_factory=dict)

    @property
    def calibrated(self) -> bool:
        return self.fitted_on is not None

    def as_dict(self) -> dict[str, Any]:
        """Plain values, as checkpoints (loaded with ``weights_only=True``) and JSON hold them."""
        values = asdict(self)
        values["model_prior"] = list(self.model_prior) if self.model_prior is not None else None
        return values

    @classmethod
    def read(cls, stored: dict[str, Any] | None) -> Calibration | None:
        if stored is None:
            return None
        known = {k: v for k, v in stored.items() if k in cls.__dataclass_fields__}
        if known.get("model_prior") is not None:
            known["model_prior"] = tuple(float(v) for v in known["model_prior"])
        return cls(**known)


#: the temperatures searched: T in [1 / 1000, 1000]
_LOG_S_RANGE = (-6.907755278982137, 6.907755278982137)


def negative_log_likelihood(logits: torch.Tensor, targets: torch.Tensor, temperature: float) -> float:
    """Mean NLL of ``softmax(logits / temperature)`` at ``targets``."""
    return torch.nn.functional.cross_entropy(logits.double() / temperature, targets).item()


def fit_temperature(logits: torch.Tensor, targets: torch.Tensor, iterations: int = 80) -> float:
    """The T that minimises the NLL of ``softmax(logits / T)`` on ``(logits [N, C], targets [N])``
    (module docstring); clamped to [1 / 1000, 1000] (a perfectly separated set drives T to 0).

    Examples:
        >>> logits = torch.tensor([[4.0, 0.0], [0.0, 4.0], [4.0, 0.0], [0.0, 4.0]])
        >>> round(fit_temperature(logits, torch.tensor([0, 1, 1, 0])), 3) > 1  # half wrong: flatten
        True
    """
    if logits.ndim != 2 or targets.shape != logits.shape[:1] or len(targets) == 0:
        raise BadValue(f"temperature scaling needs logits [N, C] and N targets, got {tuple(logits.shape)} and {tuple(targets.shape)}")
    z = logits.detach().double()
    target_logit = z.gather(1, targets.view(-1, 1)).squeeze(1)

    def slope(log_s: float) -> float:
        s = torch.tensor(log_s, dtype=torch.float64).exp()
        expected = ((s * z).softmax(1) * z).sum(1)
        return (expected - target_logit).mean().item()

    low, high = _LOG_S_RANGE
    if slope(low) >= 0:
        return float(torch.tensor(-low).exp())  # NLL rises from the flattest T on
    if slope(high) <= 0:
        return float(torch.tensor(-high).exp())  # still falling at the sharpest T
    for _ in range(iterations):
        middle = (low + high) / 2
        if slope(middle) < 0:
            low = middle
        else:
            high = middle
    return float(torch.tensor(-(low + high) / 2, dtype=torch.float64).exp())
