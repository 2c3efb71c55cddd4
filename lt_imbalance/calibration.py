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
(a balanced validation split flattens a cross-entropy model's outputs). p_model is the recipe's
(:mod:`lt_imbalance.model_prior`), or the nearest exact recipe's where it has no closed form.

Three calibrators, simplest first (:data:`CALIBRATORS`):

    none:                        softmax(z + o)
    temperature:                 softmax(z / T + o)
    temperature + class biases:  softmax(z / T + b + o)     (BCTS, Alexandari et al. 2020; b shrunk to 0)

The class biases b correct the outputs towards p_model where the recipe leaves it inexact (label
smoothing, re-weighting, focal and LDAM losses) or where the model is biased. With a hundred
validation samples, a calibrator can fit the split better and the next samples worse, so the one
applied is chosen by its NLL on held-out folds of the validation split (:func:`choose_calibrator`):
none unless another is lower, and never one whose T ends at a bound of its search.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from lt_imbalance.errors import BadValue

#: checkpoint key of the calibration record of earlier versions (now in the outputs owner's state)
LEGACY_CALIBRATION_KEY = "lt_imbalance_calibration"


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
    o = offset.double() if offset is not None else torch.zeros(z.shape[1], dtype=torch.float64, device=z.device)
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


#: standard deviation (nats) of the Gaussian prior on each class bias around 0 (bias-corrected temperature scaling)
BIAS_PRIOR_STD = 1.0
#: the calibrators, simplest first: identity, Guo et al.'s temperature, bias-corrected temperature scaling (BCTS)
CALIBRATORS = ("none", "temperature", "temperature + class biases")
#: folds of the held-out comparison of the calibrators on the validation split
FOLDS = 5
#: fewer validation samples of a class than this: the split is said to be too small to trust the calibration
TRUSTED_PER_CLASS = 10


def fit_bias_corrected(logits: torch.Tensor, targets: torch.Tensor, offset: torch.Tensor | None = None) -> tuple[float, torch.Tensor]:
    """``(T, b)`` of bias-corrected temperature scaling (Alexandari et al. 2020): minimise over s = 1 / T and b

        mean_i -log softmax(s z_i + b + o)_{y_i}  +  |b|^2 / (2 sigma^2 N)

    (sigma = :data:`BIAS_PRIOR_STD` nats, N samples): a Gaussian prior keeps each class bias near 0
    on a small split, and its weight vanishes as the split grows; by L-BFGS from Guo et al.'s T."""
    z, y = logits.detach().double(), targets
    o = offset.double() if offset is not None else torch.zeros(z.shape[1], dtype=torch.float64, device=z.device)
    start = -math.log(fit_temperature(z, y, o))
    parameters = torch.cat([torch.tensor([start], dtype=torch.float64, device=z.device), torch.zeros_like(o)]).requires_grad_(True)
    weight = 1.0 / (2 * BIAS_PRIOR_STD**2 * len(y))
    optimizer = torch.optim.LBFGS(
        [parameters], max_iter=200, tolerance_grad=1e-9, tolerance_change=1e-12, history_size=20, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        log_s, bias = parameters[0].clamp(*_LOG_S_RANGE), parameters[1:]
        loss = torch.nn.functional.cross_entropy(log_s.exp() * z + bias + o, y) + weight * bias.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    log_s, bias = parameters.detach()[0].clamp(*_LOG_S_RANGE), parameters.detach()[1:]
    return float(torch.exp(-log_s)), bias


def fit_calibrator(kind: str, logits: torch.Tensor, targets: torch.Tensor, offset: torch.Tensor | None) -> tuple[float, torch.Tensor]:
    """``(T, b)`` of one of :data:`CALIBRATORS` fitted on ``(logits, targets)`` under ``offset``."""
    zeros = torch.zeros(logits.shape[1], dtype=torch.float64, device=logits.device)
    if kind == "none":
        return 1.0, zeros
    if kind == "temperature":
        return fit_temperature(logits, targets, offset), zeros
    if kind == "temperature + class biases":
        return fit_bias_corrected(logits, targets, offset)
    raise BadValue(f"unknown calibrator {kind!r}; choose one of {CALIBRATORS}")


def calibrated_nll(logits, targets, temperature: float, bias: torch.Tensor, offset: torch.Tensor | None) -> float:
    """Mean NLL of ``softmax(logits / T + b + offset)``."""
    o = bias.double() + (offset.double() if offset is not None else 0.0)
    return negative_log_likelihood(logits, targets, temperature, o)


def fold_of(targets: torch.Tensor, folds: int, seed: int = 0) -> torch.Tensor:
    """The fold of every sample: each class dealt round-robin over the folds in a seeded random order
    (stratified, so every fold holds the class mix)."""
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(targets), generator=generator)
    order = order[torch.sort(targets.cpu()[order], stable=True).indices]  # by class, random within a class
    fold = torch.empty(len(targets), dtype=torch.long)
    fold[order] = torch.arange(len(targets)) % folds
    return fold.to(targets.device)


def held_out_nll(kind: str, logits: torch.Tensor, targets: torch.Tensor, offset: torch.Tensor | None, folds: int = FOLDS) -> float:
    """Mean NLL of each sample under ``kind`` fitted on the other folds (:func:`fold_of`)."""
    fold = fold_of(targets, folds)
    total = 0.0
    for k in range(folds):
        test, train = fold == k, fold != k
        if not test.any():
            continue
        temperature, bias = fit_calibrator(kind, logits[train], targets[train], offset)
        total += calibrated_nll(logits[test], targets[test], temperature, bias, offset) * int(test.sum())
    return total / len(targets)


def at_a_bound(temperature: float) -> bool:
    """Whether a fitted T lies at a limit of its search (separated data, or no signal)."""
    low, high = math.exp(-_LOG_S_RANGE[1]), math.exp(-_LOG_S_RANGE[0])
    return temperature <= low * (1 + 1e-6) or temperature >= high * (1 - 1e-6)


@dataclass(frozen=True)
class CalibrationChoice:
    """What :func:`choose_calibrator` found: the calibrator, its T and class biases, every candidate's
    held-out NLL, and why a candidate was passed over."""

    kind: str
    temperature: float
    bias: torch.Tensor
    held_out: dict[str, float]
    rejected: dict[str, str]


def choose_calibrator(logits: torch.Tensor, targets: torch.Tensor, offset: torch.Tensor | None, folds: int = FOLDS) -> CalibrationChoice:
    """The calibrator of :data:`CALIBRATORS` with the lowest held-out NLL (``folds``-fold, stratified)
    on the validation split, fitted again on all of it; ``none`` unless one is strictly lower, so a
    calibrator is applied only where it helped on samples it was not fitted on, and never one
    whose T ends at a bound of its search."""
    none = torch.zeros(logits.shape[1], dtype=torch.float64, device=logits.device)
    held_out = {"none": calibrated_nll(logits, targets, 1.0, none, offset)}
    rejected: dict[str, str] = {}
    fitted = {"none": (1.0, none)}
    for kind in CALIBRATORS[1:]:
        temperature, bias = fit_calibrator(kind, logits, targets, offset)
        if at_a_bound(temperature):
            rejected[kind] = f"T went to {temperature:g}, a bound of the search"
            continue
        fitted[kind] = (temperature, bias)
        held_out[kind] = held_out_nll(kind, logits, targets, offset, folds)
    best = min(held_out, key=lambda k: (held_out[k], CALIBRATORS.index(k)))
    return CalibrationChoice(best, *fitted[best], held_out, rejected)
