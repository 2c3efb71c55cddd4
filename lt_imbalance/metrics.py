"""Imbalance metrics derived from one confusion matrix (plain PyTorch and torchmetrics, no Lightning).

The confusion matrix (rows = true class, columns = prediction) is accumulated by
``torchmetrics.classification.MulticlassConfusionMatrix``, which synchronises across DDP ranks;
every number below is a function of it:

- ``acc``: top-1, sum_c M_cc / sum M;
- per-class accuracy (recall) r_c = M_cc / sum_k M_ck (NaN when class c has no samples);
- ``balanced_acc``: mean of r_c over classes with samples;
- ``macro_f1``: mean over classes that occur as target or prediction of 2 P_c r_c / (P_c + r_c),
  with precision P_c = M_cc / sum_k M_kc (an F1 of 0 where P_c + r_c = 0);
- ``many_acc`` / ``medium_acc`` / ``few_acc``: mean r_c over classes with more than 100,
  20 to 100, and fewer than 20 *training* images (Liu et al. 2019), from ``class_counts``;
- ``head_acc`` / ``tail_acc``: mean r_c over the larger and smaller halves of the classes by
  training count (the many/medium/few rule degenerates on CIFAR-10-LT).

Under a shifted test distribution q (:func:`shifted_class_prior`: long-tailed like training,
uniform, or inverted), from the balanced test set's matrix with its rows rescaled to q
(:func:`reweighted_metrics`): ``acc`` = sum_c q_c r_c and ``macro_f1`` with the rescaled columns.

From the predicted probabilities (validation and test, :func:`probability_metrics`):

- ``auroc``: one-vs-rest AUROC averaged over the classes that have positive and negative samples
  (for two classes, the binary AUROC), from per-class histograms of the scores in
  :data:`AUROC_BINS` equal bins of [0, 1] (:class:`BinnedAUROC`): AUROC_c = P(s+ > s-) +
  P(s+ = s-) / 2 with scores in one bin counted as tied, so the state is 2 x C x 200 counts
  whatever the size of the evaluation set, and exact when no positive and negative score share a
  bin (width 0.005);
- ``ece``: expected calibration error over 15 equal-width confidence bins,
  sum_b (n_b / N) |accuracy_b - mean confidence_b| (Guo et al. 2017).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import MulticlassCalibrationError

from lt_imbalance.errors import BadValue

MANY_SHOT_ABOVE = 100
FEW_SHOT_BELOW = 20
AUROC_BINS = 200


def shot_groups(class_counts: Sequence[int]) -> dict[str, list[int]]:
    """Class indices of the many (>100), medium (20..100) and few (<20) shot groups."""
    return {
        "many": [c for c, n in enumerate(class_counts) if n > MANY_SHOT_ABOVE],
        "medium": [c for c, n in enumerate(class_counts) if FEW_SHOT_BELOW <= n <= MANY_SHOT_ABOVE],
        "few": [c for c, n in enumerate(class_counts) if n < FEW_SHOT_BELOW],
    }


def head_tail_halves(class_counts: Sequence[int]) -> dict[str, list[int]]:
    """The ceil(C/2) classes with the most training images (head) and the rest (tail); ties by index."""
    order = sorted(range(len(class_counts)), key=lambda c: (-class_counts[c], c))
    half = (len(order) + 1) // 2
    return {"head": sorted(order[:half]), "tail": sorted(order[half:])}


def per_class_accuracy(confmat: torch.Tensor) -> torch.Tensor:
    """r_c = M_cc / sum_k M_ck; NaN for classes without samples (M may hold counts or shares)."""
    confmat = confmat.double()
    support = confmat.sum(1)
    return torch.where(support > 0, confmat.diagonal() / torch.where(support > 0, support, 1.0), torch.full_like(support, float("nan")))


def metrics_from_confusion(confmat: torch.Tensor, class_counts: Sequence[int] | None = None) -> dict[str, float]:
    """Summary metrics of a confusion matrix; group accuracies only where ``class_counts`` are given
    and the group is non-empty and has test samples."""
    confmat = confmat.double()
    total = confmat.sum()
    recall = per_class_accuracy(confmat)
    predicted = confmat.sum(0)
    precision = torch.where(predicted > 0, confmat.diagonal() / torch.where(predicted > 0, predicted, 1.0), torch.zeros_like(predicted))
    r = torch.nan_to_num(recall, nan=0.0)
    denom = precision + r
    f1 = torch.where(denom > 0, 2 * precision * r / denom.clamp_min(1e-12), torch.zeros_like(denom))
    occurs = (confmat.sum(1) > 0) | (predicted > 0)
    out = {
        "acc": (confmat.diagonal().sum() / total).item() if total > 0 else float("nan"),
        "balanced_acc": torch.nanmean(recall).item(),
        "macro_f1": f1[occurs].mean().item() if occurs.any() else float("nan"),
    }
    if class_counts is not None:
        if len(class_counts) != confmat.shape[0]:
            raise BadValue(f"{len(class_counts)} class counts for a {confmat.shape[0]}-class confusion matrix")
        for name, classes in {**shot_groups(class_counts), **head_tail_halves(class_counts)}.items():
            values = recall[classes] if classes else recall.new_empty(0)
            values = values[~values.isnan()]
            if len(values):
                out[f"{name}_acc"] = values.mean().item()
    return out


def shifted_class_prior(class_counts: Sequence[int], kind: str, ratio: float = 1.0) -> torch.Tensor:
    """A test-time class distribution q (sums to 1) in the training order: classes ranked by
    training count, most first (ties by index), rank k = 0..C-1.

    - ``forward`` (long-tailed like training): q_c proportional to ratio^(-k_c / (C - 1));
    - ``uniform``: q_c = 1 / C (the balanced test set itself);
    - ``backward`` (inverted): q_c proportional to ratio^(-(C - 1 - k_c) / (C - 1)).

    As the test-agnostic long-tail evaluations (e.g. Zhang et al. 2022, SADE) build their
    forward- / backward-LT test sets from the balanced one.
    """
    num_classes = len(class_counts)
    if kind not in ("forward", "uniform", "backward"):
        raise BadValue(f"unknown test distribution {kind!r}; choose forward, uniform or backward")
    if kind != "uniform" and not ratio >= 1:
        raise BadValue(f"a {kind} test distribution needs a ratio >= 1 (most / fewest), got {ratio}")
    if kind == "uniform" or num_classes == 1:
        return torch.full((num_classes,), 1.0 / num_classes, dtype=torch.float64)
    order = sorted(range(num_classes), key=lambda c: (-class_counts[c], c))
    rank = torch.empty(num_classes, dtype=torch.float64)
    rank[torch.tensor(order)] = torch.arange(num_classes, dtype=torch.float64)
    if kind == "backward":
        rank = (num_classes - 1) - rank
    weights = float(ratio) ** (-rank / (num_classes - 1))
    return weights / weights.sum()


def reweighted_metrics(confmat: torch.Tensor, prior: torch.Tensor) -> dict[str, float]:
    """Top-1 accuracy and macro-F1 expected on a test set whose classes follow ``prior`` q, from the
    confusion matrix M of any test set with every class present: each row is rescaled to the
    class's share, M'_ck = q_c M_ck / sum_j M_cj, so

        acc_q = sum_c q_c r_c   (r_c the recall of class c; balanced accuracy does not change),

    and precision, hence macro-F1, use the columns of M'."""
    confmat = confmat.double()
    support = confmat.sum(1)
    if (support == 0).any():
        raise BadValue(
            f"re-weighting needs test samples of every class; classes {torch.nonzero(support == 0).flatten().tolist()} have none"
        )
    shifted = confmat / support[:, None] * prior.double()[:, None]  # sums to 1
    metrics = metrics_from_confusion(shifted)
    return {"acc": metrics["acc"], "macro_f1": metrics["macro_f1"]}


class BinnedAUROC(Metric):
    """One-vs-rest macro AUROC from per-class score histograms (module docstring).

    Updated with ``(probabilities [N, C], targets [N])``; the counts are summed across devices.
    Integer ``bincount`` keeps it exact and deterministic on every device.

    Args:
        num_classes: C.
        bins: equal-width score bins on [0, 1].

    Examples:
        >>> auroc = BinnedAUROC(2)
        >>> auroc.update(torch.tensor([[0.9, 0.1], [0.2, 0.8]]), torch.tensor([0, 1]))
        >>> auroc.compute().item()
        1.0
    """

    full_state_update = False

    def __init__(self, num_classes: int, bins: int = AUROC_BINS):
        super().__init__()
        self.num_classes, self.bins = num_classes, bins
        self.add_state("positives", torch.zeros(num_classes, bins, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("negatives", torch.zeros(num_classes, bins, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, probabilities: torch.Tensor, targets: torch.Tensor) -> None:
        n, c = probabilities.shape
        bin_of = (probabilities.detach().float().clamp(0, 1) * self.bins).long().clamp_max(self.bins - 1)
        positive = torch.nn.functional.one_hot(targets, c).bool()
        cell = torch.arange(c, device=bin_of.device) * self.bins + bin_of  # [N, C]: class c's bin of each score
        size = c * self.bins
        self.positives += torch.bincount(cell[positive], minlength=size).view(c, self.bins)
        self.negatives += torch.bincount(cell[~positive], minlength=size).view(c, self.bins)

    def compute(self) -> torch.Tensor:
        pos, neg = self.positives.double(), self.negatives.double()
        above = pos.flip(1).cumsum(1).flip(1) - pos  # positives in strictly higher bins
        wins = (neg * (above + 0.5 * pos)).sum(1)
        pairs = pos.sum(1) * neg.sum(1)
        valid = pairs > 0
        return (wins[valid] / pairs[valid]).mean().float() if valid.any() else torch.tensor(float("nan"))


def probability_metrics(num_classes: int) -> MetricCollection:
    """AUROC (one-vs-rest, macro) and 15-bin ECE, updated with ``(probabilities [N, C], targets [N])``."""
    return MetricCollection(
        {
            "auroc": BinnedAUROC(num_classes),
            "ece": MulticlassCalibrationError(num_classes, n_bins=15, norm="l1"),
        }
    )


def logit_margins(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-sample margin z_y - max_{k != y} z_k (negative when the sample is misclassified)."""
    true = logits.gather(1, targets[:, None]).squeeze(1)
    others = logits.scatter(1, targets[:, None], float("-inf"))
    return true - others.max(1).values


def per_class_mean(values: torch.Tensor, targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Mean of ``values`` over the samples of each class (NaN for classes without samples)."""
    sums = torch.zeros(num_classes, dtype=torch.float64).index_add_(0, targets, values.double())
    counts = torch.bincount(targets, minlength=num_classes).double()
    return torch.where(counts > 0, sums / counts.clamp_min(1), torch.full_like(sums, float("nan")))


def balanced_accuracy_se(confusion: torch.Tensor) -> float:
    """Standard error of the balanced accuracy from the evaluation images' binomial noise:
    SE = sqrt(sum_c p_c (1 - p_c) / n_c) / C over the C classes with n_c > 0 images, with
    p_c = (k_c + 1) / (n_c + 2) for k_c right of n_c (Laplace's estimate, so that a class got all
    right or all wrong on a few images still counts as uncertain). Small validation sets make it
    large (one image of a class with 3 moves its recall by 1/3)."""
    counts = confusion.sum(dim=1).double()
    present = counts > 0
    p = (confusion.diagonal().double()[present] + 1) / (counts[present] + 2)
    variance = (p * (1 - p) / counts[present]).sum()
    return float(variance.sqrt() / int(present.sum()))


@dataclass(frozen=True)
class EvaluationResult:
    """One stage's evaluation at the end of an epoch, all from one (synchronised) confusion matrix.

    Args:
        stage: ``train``, ``val`` or ``test``.
        epoch: the trainer's epoch when it was computed.
        metrics: the summary metrics above (fractions in [0, 1]).
        per_class_acc: recall of every class (NaN where the class has no samples).
        confusion: ``[C, C]`` counts, rows = true class, columns = prediction (on the CPU).
        class_counts: training images per class, when known.
    """

    stage: str
    epoch: int
    metrics: dict[str, float]
    per_class_acc: list[float]
    confusion: torch.Tensor
    class_counts: list[int] | None = None

    @classmethod
    def from_confusion(
        cls, stage: str, epoch: int, confusion: torch.Tensor, class_counts: Sequence[int] | None, extra: dict[str, float] | None = None
    ):
        """Compute metrics and per-class accuracy of ``confusion`` (plus ``extra`` metrics, e.g. AUROC)."""
        metrics = metrics_from_confusion(confusion, class_counts)
        metrics.update(extra or {})
        counts = list(class_counts) if class_counts is not None else None
        return cls(stage, epoch, metrics, per_class_accuracy(confusion).tolist(), confusion.detach().cpu(), counts)

    @property
    def eval_counts(self) -> list[int]:
        """Samples per class in the evaluated split."""
        return self.confusion.sum(1).long().tolist()

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage, "epoch": self.epoch, "metrics": self.metrics, "per_class_acc": self.per_class_acc,
            "confusion": self.confusion.long().tolist(), "eval_counts": self.eval_counts, "class_counts": self.class_counts,
        }  # fmt: skip
