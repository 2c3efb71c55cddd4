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
  (for two classes, the binary AUROC), AUROC_c = P(s+ > s-) + P(s+ = s-) / 2, from per-class
  histograms (:class:`BinnedAUROC`) of the scores' log-odds z = log p - log(1 - p) (a monotone
  map, so the AUROC is unchanged) in :data:`AUROC_BINS` bins that adapt to where each class's
  scores lie: the bins of class c have a power-of-two width w_c and edges at multiples of w_c, and
  when a score falls outside them the width doubles and pairs of old bins merge exactly. Scores in
  one bin count as tied, so the error is at most half the share of positive-negative pairs that
  share a bin; the state is C x (2 x 1024 + 2) float64 numbers (16.4 KB per class) whatever the
  size of the evaluation set;
- ``ece``: expected calibration error over 15 equal-width confidence bins,
  sum_b (n_b / N) |accuracy_b - mean confidence_b| (Guo et al. 2017);
- ``nll``: mean negative log-likelihood of the true class, -(1/N) sum_i log p_i,y_i (nats; a
  probability below 1e-12 counts as 1e-12).
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
AUROC_BINS = 1024
_SMALLEST = 2.0**-160  # p and 1 - p floored here (below float32's smallest number): |z| <= 111
_MIN_WIDTH = 2.0**-30


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
    """One-vs-rest macro AUROC from per-class adaptive histograms of the log-odds (module docstring).

    Updated with ``(probabilities [N, C], targets [N])``. The state is one ``[C, 2 + 2 * bins]``
    float64 tensor per class row: the lower edge a_c, the width w_c (0 before any score), the
    positives' and the negatives' counts. Devices' histograms are merged exactly onto a common grid
    (the widest width, an edge that is a multiple of it).

    Args:
        num_classes: C.
        bins: bins per class (even).

    Examples:
        >>> auroc = BinnedAUROC(2)
        >>> auroc.update(torch.tensor([[0.502, 0.498], [0.501, 0.499]]), torch.tensor([0, 1]))
        >>> auroc.compute().item()
        1.0
    """

    full_state_update = False

    def __init__(self, num_classes: int, bins: int = AUROC_BINS):
        super().__init__()
        if bins < 2 or bins % 2:
            raise BadValue(f"BinnedAUROC needs an even number of bins >= 2, got {bins}")
        self.num_classes, self.bins = num_classes, bins
        self.add_state("histogram", torch.zeros(num_classes, 2 + 2 * bins, dtype=torch.float64), dist_reduce_fx=self._merge)

    def update(self, probabilities: torch.Tensor, targets: torch.Tensor) -> None:
        p = probabilities.detach().double()
        z = p.clamp_min(_SMALLEST).log() - (1 - p).clamp_min(_SMALLEST).log()  # [N, C] log-odds
        grown = _grow(self.histogram, z.min(0).values, z.max(0).values, self.bins)
        n, c = z.shape
        edge, width = grown[:, 0], grown[:, 1]
        bin_of = ((z - edge) / width).floor().long().clamp(0, self.bins - 1)  # [N, C]
        positive = torch.nn.functional.one_hot(targets, c).bool()
        cell = torch.arange(c, device=z.device) * self.bins + bin_of
        size = c * self.bins
        grown[:, 2 : 2 + self.bins] += torch.bincount(cell[positive], minlength=size).view(c, self.bins)
        grown[:, 2 + self.bins :] += torch.bincount(cell[~positive], minlength=size).view(c, self.bins)
        self.histogram = grown

    def _merge(self, stacked: torch.Tensor) -> torch.Tensor:
        """The devices' histograms ``[W, C, 2 + 2 * bins]`` on one grid, summed."""
        merged = torch.zeros_like(stacked[0])
        for histogram in stacked:
            merged = _absorb(merged, histogram, self.bins)
        return merged

    def compute(self) -> torch.Tensor:
        pos, neg = self.histogram[:, 2 : 2 + self.bins], self.histogram[:, 2 + self.bins :]
        above = pos.flip(1).cumsum(1).flip(1) - pos  # positives in strictly higher bins
        wins = (neg * (above + 0.5 * pos)).sum(1)
        pairs = pos.sum(1) * neg.sum(1)
        valid = pairs > 0
        return (wins[valid] / pairs[valid]).mean().float() if valid.any() else torch.tensor(float("nan"))


def _fit_grid(low: torch.Tensor, high: torch.Tensor, min_width: torch.Tensor, bins: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per class, the narrowest grid whose ``bins`` bins hold [low, high]: a power-of-two width of at
    least ``min_width`` and an edge that is a multiple of it."""
    guess = torch.exp2(torch.ceil(torch.log2(((high - low) / (bins - 1)).clamp_min(_MIN_WIDTH))))
    width = torch.maximum(guess, min_width)
    while True:
        edge = torch.floor(low / width) * width
        too_narrow = edge + bins * width <= high
        if not too_narrow.any():
            return edge, width
        width = torch.where(too_narrow, 2 * width, width)


def _span(histogram: torch.Tensor, bins: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per class, the left edges of the first and the last bin (+inf and -inf before any score)."""
    edge, width = histogram[:, 0], histogram[:, 1]
    has_grid = width > 0
    inf = torch.full_like(edge, float("inf"))
    return torch.where(has_grid, edge, inf), torch.where(has_grid, edge + (bins - 1) * width, -inf)


def _regrid(histogram: torch.Tensor, new_edge: torch.Tensor, new_width: torch.Tensor, bins: int) -> torch.Tensor:
    """``histogram`` moved onto the grids (``new_edge``, ``new_width``); exact, since every old bin
    lies inside one new bin (widths are powers of two, edges multiples of the width)."""
    edge, width = histogram[:, :1], histogram[:, 1:2]
    old_left = edge + width * torch.arange(bins, dtype=histogram.dtype, device=histogram.device)  # [C, B]
    target = ((old_left - new_edge[:, None]) / new_width[:, None]).floor().long().clamp(0, bins - 1)
    moved = torch.zeros_like(histogram)
    moved[:, 0], moved[:, 1] = new_edge, new_width
    moved[:, 2 : 2 + bins].scatter_add_(1, target, histogram[:, 2 : 2 + bins])
    moved[:, 2 + bins :].scatter_add_(1, target, histogram[:, 2 + bins :])
    return moved


def _grow(histogram: torch.Tensor, low: torch.Tensor, high: torch.Tensor, bins: int) -> torch.Tensor:
    """``histogram`` on grids that also hold every value in [low, high] per class."""
    first, last = _span(histogram, bins)
    new_edge, new_width = _fit_grid(torch.minimum(low, first), torch.maximum(high, last), histogram[:, 1], bins)
    return _regrid(histogram, new_edge, new_width, bins)


def _absorb(histogram: torch.Tensor, other: torch.Tensor, bins: int) -> torch.Tensor:
    """The sum of two histograms, on a grid that holds both (classes without scores stay empty)."""
    (first, last), (other_first, other_last) = _span(histogram, bins), _span(other, bins)
    low, high = torch.minimum(first, other_first), torch.maximum(last, other_last)
    empty = torch.isinf(low)
    low, high = torch.where(empty, 0.0, low), torch.where(empty, 0.0, high)
    new_edge, new_width = _fit_grid(low, high, torch.maximum(histogram[:, 1], other[:, 1]), bins)
    merged = _regrid(histogram, new_edge, new_width, bins)
    merged[:, 2:] += _regrid(other, new_edge, new_width, bins)[:, 2:]
    merged[empty] = 0.0
    return merged


class MeanNLL(Metric):
    """Mean negative log-likelihood of the true class (module docstring), from ``(probabilities [N, C], targets [N])``.

    Examples:
        >>> nll = MeanNLL()
        >>> nll.update(torch.tensor([[0.5, 0.5], [0.25, 0.75]]), torch.tensor([0, 1]))
        >>> round(nll.compute().item(), 4)  # (log 2 + log 4/3) / 2
        0.4904
    """

    full_state_update = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, probabilities: torch.Tensor, targets: torch.Tensor) -> None:
        p = probabilities.double().gather(1, targets.view(-1, 1)).clamp_min(1e-12)
        self.total += -p.log().sum()
        self.count += len(targets)

    def compute(self) -> torch.Tensor:
        return self.total / self.count


def calibration_metrics(num_classes: int, auroc: bool = False) -> MetricCollection:
    """15-bin ECE and the mean NLL (and the AUROC when ``auroc``), updated with ``(probabilities [N, C], targets [N])``."""
    metrics = {"ece": MulticlassCalibrationError(num_classes, n_bins=15, norm="l1"), "nll": MeanNLL()}
    return MetricCollection({"auroc": BinnedAUROC(num_classes), **metrics} if auroc else metrics)


def probability_metrics(num_classes: int) -> MetricCollection:
    """AUROC (one-vs-rest, macro), 15-bin ECE and NLL, updated with ``(probabilities [N, C], targets [N])``."""
    return calibration_metrics(num_classes, auroc=True)


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
