"""Temperature scaling (Guo et al. 2017): one scalar T that calibrates a classifier's probabilities.

    p_T(y | x) = softmax(z(x) / T)_y,        T* = argmin_T  -(1/N) sum_i log p_T(y_i | x_i)

fitted on held-out logits ``z`` (the validation split, after any post-hoc adjustment). With
s = 1 / T the negative log-likelihood NLL(s) = mean_i [logsumexp(s z_i + o) - s z_i,y_i - o_y_i]
is convex in s (a log-sum-exp of a linear map plus a linear term), and its derivative

    dNLL/ds = mean_i [ sum_c p_s(c | x_i) z_i,c  -  z_i,y_i ]

increases with s, so T* is found by bisection on the sign of the derivative (over log s), to
machine precision and deterministically; the argmax, and so accuracy, never changes.

The offset o (0 in Guo et al.) is log v - log p_model: the validation split's class mix v need not
be the prior p_model the outputs assume (a cross-entropy model assumes the long-tailed training
mix; a balanced validation split has a uniform one). softmax(z / T) is meant to be the posterior
under p_model, so on the validation split it is scored re-weighted to v, softmax(z / T + o)
(:mod:`lt_imbalance.label_shift`); without o, T would also absorb the mismatch of the two priors
(a balanced validation split flattens a cross-entropy model's outputs). When p_model has no
closed form, T and p_model are fitted together on the validation labels, with the offsets
shrunk towards the nearest exact recipe's (:func:`fit_calibration`).
"""

from __future__ import annotations

import math
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


def negative_log_likelihood(logits: torch.Tensor, targets: torch.Tensor, temperature: float, offset: torch.Tensor | None = None) -> float:
    """Mean NLL of ``softmax(logits / temperature + offset)`` at ``targets``."""
    z = logits.double() / temperature + (offset.double() if offset is not None else 0.0)
    return torch.nn.functional.cross_entropy(z, targets).item()


def fit_temperature(logits: torch.Tensor, targets: torch.Tensor, offset: torch.Tensor | None = None, iterations: int = 80) -> float:
    """The T that minimises the NLL of ``softmax(logits / T + offset)`` on ``(logits [N, C], targets [N])``
    (module docstring); clamped to [1 / 1000, 1000] (a perfectly separated set drives T to 0).

    Examples:
        >>> logits = torch.tensor([[4.0, 0.0], [0.0, 4.0], [4.0, 0.0], [0.0, 4.0]])
        >>> round(fit_temperature(logits, torch.tensor([0, 1, 1, 0])), 3) > 1  # half wrong: flatten
        True
    """
    if logits.ndim != 2 or targets.shape != logits.shape[:1] or len(targets) == 0:
        raise BadValue(f"temperature scaling needs logits [N, C] and N targets, got {tuple(logits.shape)} and {tuple(targets.shape)}")
    z = logits.detach().double()
    o = offset.double() if offset is not None else torch.zeros(z.shape[1], dtype=torch.float64)
    target_logit = z.gather(1, targets.view(-1, 1)).squeeze(1)

    def slope(log_s: float) -> float:
        s = torch.tensor(log_s, dtype=torch.float64).exp()
        expected = ((s * z + o).softmax(1) * z).sum(1)
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


#: standard deviation (nats) of the Gaussian prior on each class offset b_c around the recipe's guess
OFFSET_PRIOR_STD = 1.0


def fit_calibration(
    logits: torch.Tensor, targets: torch.Tensor, model_prior: torch.Tensor | None, prior_guess: torch.Tensor | None = None
) -> tuple[float, torch.Tensor | None]:
    """``(T, p_model)`` on a labelled validation split (module docstring). With ``model_prior``
    known, T minimises the NLL of softmax(z / T + log v - log p_model). Without it, T and the
    offsets b (e^{b} ∝ v / p_model) maximise the likelihood of the validation labels under
    softmax(z / T + b) times a Gaussian prior on each b_c (standard deviation
    :data:`OFFSET_PRIOR_STD` nats) around the offsets of ``prior_guess`` (the nearest exact recipe's
    prior; uniform when not given); by L-BFGS over (log 1/T, b). Unpenalised, a few offsets could
    separate a small validation split and drive T to 0; with much validation data the labels decide.
    ``p_model`` is ``None`` when a class has no validation sample (T is then Guo et al.'s)."""
    counts = torch.bincount(targets, minlength=logits.shape[1]).double()
    log_mix = torch.log((counts / counts.sum()).clamp_min(1e-300))
    if model_prior is not None:
        prior = torch.as_tensor(model_prior, dtype=torch.float64)
        prior = prior / prior.sum()
        return fit_temperature(logits, targets, log_mix - torch.log(prior)), prior
    if (counts == 0).any():
        return fit_temperature(logits, targets), None
    z = logits.detach().double()
    guess = torch.ones(z.shape[1], dtype=torch.float64) if prior_guess is None else torch.as_tensor(prior_guess, dtype=torch.float64)
    centre = log_mix - torch.log(guess / guess.sum())
    start = -torch.log(torch.tensor([fit_temperature(z, targets, centre)], dtype=torch.float64))
    parameters = torch.cat([start, centre]).requires_grad_(True)  # log s, b
    weight = 1.0 / (2 * OFFSET_PRIOR_STD**2 * len(targets))
    optimizer = torch.optim.LBFGS(
        [parameters], max_iter=500, tolerance_grad=1e-10, tolerance_change=1e-14, history_size=20, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        log_s, bias = parameters[0].clamp(*_LOG_S_RANGE), parameters[1:]
        loss = torch.nn.functional.cross_entropy(log_s.exp() * z + bias, targets) + weight * (bias - centre).pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    log_s, bias = parameters.detach()[0].clamp(*_LOG_S_RANGE), parameters.detach()[1:]
    log_weights = log_mix - bias
    weights = torch.exp(log_weights - log_weights.max())
    return float(torch.exp(-log_s)), weights / weights.sum()


def at_the_sharpest(temperature: float) -> bool:
    """Whether a fitted T is the lower bound: the split is separated (no error to calibrate on)."""
    return temperature <= math.exp(-_LOG_S_RANGE[1]) * (1 + 1e-6)
