"""An ensemble of a study's trials, chosen on their deployed validation probabilities.

Greedy forward selection with replacement (Caruana et al. 2004, as auto-sklearn and AutoGluon
build theirs): start from nothing; each round add the trial whose addition makes the average of
the members' probabilities score best on the validation split (ties: the lower NLL, then the
earlier trial); a trial may be added again, which raises its weight. After ``size`` rounds the
ensemble is the shortest prefix with the best score, so a trial that only adds noise is never kept
and a plain top-k average's decline as weaker trials join does not happen. Weights are the
members' counts over the rounds kept.

The score is the study's monitor (balanced accuracy or accuracy of the argmax). Chosen and scored
on the same validation images, its value is optimistic like any selected value; the test-set
comparison retrains the members (:mod:`lt_imbalance.tuning.study_ensemble`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: rounds of greedy selection (the most members an ensemble can count, repeats included)
ENSEMBLE_ROUNDS = 10


@dataclass(frozen=True)
class Ensemble:
    """Trial number -> weight (summing to 1), and the validation score of the weighted average."""

    weights: dict[int, float]
    value: float

    def probabilities(self, probabilities: dict[int, np.ndarray]) -> np.ndarray:
        """The weighted average of the members' probabilities [N, C]."""
        return sum(w * probabilities[t] for t, w in self.weights.items())


def score(probabilities: np.ndarray, targets: np.ndarray, metric: str) -> float:
    """Balanced accuracy (``balanced_acc``) or accuracy (``acc``) of the argmax of ``probabilities``."""
    right = probabilities.argmax(1) == targets
    if metric == "acc":
        return float(right.mean())
    return float(np.mean([right[targets == c].mean() for c in np.unique(targets)]))


def nll(probabilities: np.ndarray, targets: np.ndarray) -> float:
    return float(-np.log(np.clip(probabilities[np.arange(len(targets)), targets], 1e-12, None)).mean())


def greedy_ensemble(probabilities: dict[int, np.ndarray], targets: np.ndarray, metric: str, rounds: int = ENSEMBLE_ROUNDS) -> Ensemble:
    """The greedy ensemble of the module docstring over ``{trial number: probabilities [N, C]}``.

    Examples:
        >>> y = np.array([0, 1])
        >>> good, bad = np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([[0.1, 0.9], [0.9, 0.1]])
        >>> greedy_ensemble({0: good, 1: bad}, y, "acc").weights
        {0: 1.0}
    """
    total = np.zeros_like(next(iter(probabilities.values())), dtype=np.float64)
    chosen: list[int] = []
    best: tuple[float, int] = (-np.inf, 0)  # (score, prefix length)
    for _ in range(rounds):
        means = {t: (total + p) / (len(chosen) + 1) for t, p in probabilities.items()}
        _, _, _, pick = max((score(m, targets, metric), -nll(m, targets), -t, t) for t, m in means.items())
        chosen.append(pick)
        total += probabilities[pick]
        value = score(total / len(chosen), targets, metric)
        if value > best[0]:
            best = (value, len(chosen))
    kept = chosen[: best[1]]
    weights = {t: kept.count(t) / len(kept) for t in dict.fromkeys(kept)}
    return Ensemble(weights, best[0])
