"""The class prior a trained model's outputs assume, p_model(y), derived from its recipe.

A classifier trained by cross-entropy on labels drawn with prior s(y) estimates the posterior
under s. The recipe's parts that change the implied prior are all powers of the training counts
n_c (prior pi_c = n_c / sum_k n_k):

- the sampler: ``random`` draws labels with s ∝ n, ``square_root`` with s ∝ n^(1/2),
  ``class_balanced`` with s ∝ n^0;
- a logit-adjusted loss with tau_loss (Balanced Softmax: tau_loss = 1) trains softmax(z + tau_loss log pi)
  to the posterior under s, so softmax(z) assumes s / pi^tau_loss;
- post-hoc adjustment evaluates with z - tau_posthoc log pi, dividing by pi^tau_posthoc once more.

Hence, exactly at the loss's optimum,

    p_model(c) ∝ n_c ^ (a - tau_loss - tau_posthoc),   a = 1 (random), 1/2 (square root), 0 (balanced).

Label smoothing, class re-weighting (and DRW), focal and LDAM losses, and losses of the user's
own have no such closed form: :func:`prior_exponent` returns ``None`` for them, with the reason;
the outputs then assume the nearest exact recipe's prior, and calibration's class biases may
correct them towards it (:mod:`lt_imbalance.calibration`). Class re-weighting by w_c is kept in
the nearest prior: a weighted loss's optimum is the posterior under the label distribution
s_c w_c, so its nearest prior is ∝ n_c^(a - tau_loss - tau_posthoc) w_c (with DRW, the weights
of the final epochs). Without them, LDAM-DRW (w_c ≈ 1 / n_c: outputs close to balanced) would be
taken as trained under the training mix, and re-weighting it to a uniform target prior would
push every prediction to the rarest class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from lt_imbalance.losses import BalancedSoftmaxLoss, CrossEntropy, LogitAdjustedLoss
from lt_imbalance.losses.class_counts import counts_tensor

#: the exponent a of the label distribution each sampler draws, s ∝ n^a
SAMPLER_POWER = {"random": 1.0, "square_root": 0.5, "class_balanced": 0.0}


def prior_exponent(sampler: str, loss: nn.Module, posthoc_tau: float, reweighting: str) -> tuple[float | None, str]:
    """The exponent e of p_model ∝ n^e for this recipe (module docstring), or ``None`` with the reason
    the recipe has no closed form; the second value says what the recipe is, in words."""
    if sampler not in SAMPLER_POWER:
        return None, f"sampler {sampler!r} has no known label distribution"
    if type(loss) not in (CrossEntropy, LogitAdjustedLoss, BalancedSoftmaxLoss):
        return None, f"the {type(loss).__name__} loss has no closed-form prior"
    if bool((loss.class_eps > 0).any()):
        return None, "label smoothing changes the posterior"
    if reweighting != "none":
        return None, f"{reweighting} class re-weighting changes the posterior"
    loss_tau = float(getattr(loss, "tau", 0.0))
    parts = [f"{sampler} sampler"]
    if loss_tau:
        parts.append("Balanced Softmax" if type(loss) is BalancedSoftmaxLoss else f"logit-adjusted loss tau {loss_tau:g}")
    if posthoc_tau:
        parts.append(f"post-hoc tau {posthoc_tau:g}")
    return nearest_exponent(sampler, loss, posthoc_tau), " + ".join(parts)


def nearest_exponent(sampler: str, loss: nn.Module, posthoc_tau: float) -> float:
    """a - tau_loss - tau_posthoc (module docstring): the exact exponent where :func:`prior_exponent`
    finds one, otherwise that of the nearest exact recipe (what has no closed form left out; an
    unknown sampler taken as random)."""
    return SAMPLER_POWER.get(sampler, 1.0) - float(getattr(loss, "tau", 0.0)) - float(posthoc_tau)


def power_prior(class_counts: Sequence[int], exponent: float) -> torch.Tensor:
    """``n^exponent`` normalised to sum 1 (float64).

    Examples:
        >>> power_prior([90, 10], 1.0).tolist()
        [0.9, 0.1]
        >>> power_prior([90, 10], 0.0).tolist()
        [0.5, 0.5]
    """
    counts = counts_tensor(class_counts, "the model's prior")
    weights = counts.pow(exponent)
    return weights / weights.sum()


@dataclass(frozen=True)
class RecipePriors:
    """The prior a recipe's outputs assume: ``exact`` (``None`` where the recipe has no closed
    form), ``nearest`` (the exact one, or the nearest exact recipe's), and ``source``, in words."""

    exact: torch.Tensor | None
    nearest: torch.Tensor
    source: str


def recipe_priors(
    class_counts: Sequence[int],
    sampler: str,
    loss: nn.Module,
    posthoc_tau: float,
    reweighting: str,
    class_weights: torch.Tensor | None = None,
) -> RecipePriors:
    """:class:`RecipePriors` of a recipe (module docstring); ``class_weights``: the w_c of its
    ``reweighting`` (:func:`lt_imbalance.losses.reweighting.class_weights`).

    Examples:
        >>> from lt_imbalance.losses import CrossEntropy
        >>> recipe_priors([3, 1], "random", CrossEntropy([3, 1]), 0.0, "none").exact.tolist()
        [0.75, 0.25]
        >>> recipe_priors([3, 1], "random", CrossEntropy([3, 1]), 0.0, "inverse", torch.tensor([0.5, 1.5])).nearest.tolist()
        [0.5, 0.5]
    """
    exponent, recipe = prior_exponent(sampler, loss, posthoc_tau, reweighting)
    if exponent is not None:
        prior = power_prior(class_counts, exponent)
        return RecipePriors(prior, prior, f"exact from the recipe ({recipe}): n_c^{exponent:g}")
    nearest = nearest_exponent(sampler, loss, posthoc_tau)
    prior, weighted = power_prior(class_counts, nearest), ""
    if reweighting != "none" and class_weights is not None:
        prior, weighted = prior * class_weights.double().cpu(), f" times the {reweighting} class weights"
        prior = prior / prior.sum()
    source = f"approximate: n_c^{nearest:g}{weighted}, as if without what has no closed form ({recipe})"
    return RecipePriors(None, prior, source)
