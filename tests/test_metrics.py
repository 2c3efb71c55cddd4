import math

import pytest
import torch
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_f1_score

from lt_imbalance.metrics import head_tail_halves, metrics_from_confusion, per_class_accuracy, shot_groups

# rows: true class, columns: predicted class
CONFUSION = torch.tensor(
    [
        [8, 1, 1, 0],  # class 0: 10 samples, 8 right
        [2, 6, 0, 2],  # class 1: 10 samples, 6 right
        [0, 0, 3, 2],  # class 2: 5 samples, 3 right
        [1, 0, 1, 3],  # class 3: 5 samples, 3 right
    ]
)
COUNTS = [500, 60, 25, 4]  # many, medium, medium, few


def test_metrics_against_hand_computation():
    m = metrics_from_confusion(CONFUSION, COUNTS)
    assert m["acc"] == pytest.approx(20 / 30)
    recalls = [0.8, 0.6, 0.6, 0.6]
    assert per_class_accuracy(CONFUSION).tolist() == pytest.approx(recalls)
    assert m["balanced_acc"] == pytest.approx(sum(recalls) / 4)
    precisions = [8 / 11, 6 / 7, 3 / 5, 3 / 7]
    f1 = [2 * p * r / (p + r) for p, r in zip(precisions, recalls)]
    assert m["macro_f1"] == pytest.approx(sum(f1) / 4)
    assert m["many_acc"] == pytest.approx(0.8)
    assert m["medium_acc"] == pytest.approx(0.6)
    assert m["few_acc"] == pytest.approx(0.6)
    assert m["head_acc"] == pytest.approx(0.7) and m["tail_acc"] == pytest.approx(0.6)


def test_metrics_agree_with_torchmetrics_on_random_predictions():
    g = torch.Generator().manual_seed(0)
    target = torch.randint(0, 7, (400,), generator=g)
    preds = torch.where(torch.rand(400, generator=g) < 0.6, target, torch.randint(0, 7, (400,), generator=g))
    confusion = torch.zeros(7, 7, dtype=torch.long)
    confusion.index_put_((target, preds), torch.ones(400, dtype=torch.long), accumulate=True)
    m = metrics_from_confusion(confusion)
    assert m["acc"] == pytest.approx(multiclass_accuracy(preds, target, 7, average="micro").item(), abs=1e-6)
    assert m["balanced_acc"] == pytest.approx(multiclass_accuracy(preds, target, 7, average="macro").item(), abs=1e-6)
    assert m["macro_f1"] == pytest.approx(multiclass_f1_score(preds, target, 7, average="macro").item(), abs=1e-6)


def test_groups_follow_class_counts_not_hard_coded():
    assert shot_groups([101, 100, 20, 19]) == {"many": [0], "medium": [1, 2], "few": [3]}
    assert head_tail_halves([5, 50, 500]) == {"head": [1, 2], "tail": [0]}
    m = metrics_from_confusion(CONFUSION, [500, 400, 300, 200])  # all many-shot: no medium / few entries
    assert "medium_acc" not in m and "few_acc" not in m and m["many_acc"] == pytest.approx(m["balanced_acc"])


def test_absent_class_is_left_out_of_balanced_accuracy():
    confusion = torch.tensor([[4, 0, 0], [0, 0, 0], [1, 0, 1]])
    m = metrics_from_confusion(confusion)
    assert math.isnan(per_class_accuracy(confusion)[1].item())
    assert m["balanced_acc"] == pytest.approx((1.0 + 0.5) / 2)


def test_mismatched_class_counts_are_refused():
    with pytest.raises(ValueError, match="3 class counts for a 4-class confusion matrix"):
        metrics_from_confusion(CONFUSION, [1, 2, 3])


def test_auroc_and_ece_against_hand_computation():
    from lt_imbalance.metrics import probability_metrics

    probs = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])
    target = torch.tensor([0, 1, 1, 1])
    m = probability_metrics(2)
    m.update(probs, target)
    out = {k: v.item() for k, v in m.compute().items()}
    # class-1 scores: negative 0.1; positives 0.2, 0.7, 0.6: all 3 positive-negative pairs ranked right
    assert out["auroc"] == pytest.approx(1.0)
    # ECE: confidences 0.9, 0.8, 0.7, 0.6 in separate bins, correct 1, 0, 1, 1
    assert out["ece"] == pytest.approx((0.1 + 0.8 + 0.3 + 0.4) / 4)
    m.reset()
    m.update(torch.tensor([[0.6, 0.4], [0.35, 0.65], [0.7, 0.3], [0.2, 0.8]]), torch.tensor([0, 0, 1, 1]))
    # positives (class 1) score 0.3, 0.8; negatives 0.4, 0.65: pairs won (0.8>0.4, 0.8>0.65) = 2 of 4
    assert m.compute()["auroc"].item() == pytest.approx(0.5)


def test_auroc_state_does_not_grow_with_the_evaluation_set():
    from sklearn.metrics import roc_auc_score

    from lt_imbalance.metrics import probability_metrics

    g = torch.Generator().manual_seed(0)
    m = probability_metrics(4)
    auroc = m["auroc"]
    sizes = []
    probs_all, targets_all = [], []
    for _ in range(5):
        targets = torch.randint(0, 4, (500,), generator=g)
        logits = torch.randn(500, 4, generator=g) + 1.5 * torch.nn.functional.one_hot(targets, 4)
        probs = logits.softmax(1)
        m.update(probs, targets)
        probs_all.append(probs)
        targets_all.append(targets)
        sizes.append(sum(v.numel() for v in auroc.metric_state.values() if isinstance(v, torch.Tensor)))
    assert len(set(sizes)) == 1  # binned: the same state after 500 and after 2,500 samples
    assert sizes[0] == 4 * (2 + 2 * 1024)  # 16.4 KB per class
    exact = roc_auc_score(torch.cat(targets_all).numpy(), torch.cat(probs_all).numpy(), multi_class="ovr", average="macro")
    assert m.compute()["auroc"].item() == pytest.approx(exact, abs=2e-3)


def _auroc_in_batches(probs: torch.Tensor, targets: torch.Tensor, batch: int = 1000) -> float:
    from lt_imbalance.metrics import BinnedAUROC

    m = BinnedAUROC(probs.shape[1])
    for i in range(0, len(targets), batch):
        m.update(probs[i : i + batch], targets[i : i + batch])
    return m.compute().item()


@pytest.mark.parametrize(("shift", "scale"), [(3.0, 5.0), (3.0, 10.0), (5.0, 8.0), (1.5, 20.0)])
def test_auroc_matches_sklearn_on_1000_classes(shift, scale):
    """Low (5%), middling (41%) and high (95%) top-1 on 1,000 classes; peaked softmaxes put most
    negative scores near 0 (the old equal-width bins reported 0.90 where sklearn gives 0.98)."""
    from sklearn.metrics import roc_auc_score

    g = torch.Generator().manual_seed(0)
    targets = torch.arange(5000) % 1000
    logits = torch.randn(5000, 1000, generator=g)
    logits[torch.arange(5000), targets] += shift
    probs = (logits * scale).softmax(1)
    exact = roc_auc_score(targets.numpy(), probs.double().numpy(), multi_class="ovr", average="macro")
    assert _auroc_in_batches(probs, targets) == pytest.approx(exact, abs=2e-3)


def test_auroc_of_a_separable_binary_problem_inside_one_old_bin_and_of_ties():
    from sklearn.metrics import roc_auc_score

    g = torch.Generator().manual_seed(0)
    positive = torch.cat([torch.zeros(50), torch.ones(50)]).long()
    score = 0.5001 + 2e-4 * positive + 1e-4 * torch.rand(100, generator=g)  # all within [0.5, 0.5005)
    assert _auroc_in_batches(torch.stack([1 - score, score], 1), positive, batch=30) == pytest.approx(1.0)
    tied = torch.tensor([0.3, 0.3, 0.7, 0.7, 0.5, 0.5])
    labels = torch.tensor([0, 1, 0, 1, 0, 1])
    assert _auroc_in_batches(torch.stack([1 - tied, tied], 1), labels) == pytest.approx(roc_auc_score(labels, tied)) == 0.5


@pytest.mark.filterwarnings("ignore:The ``compute`` method")
def test_auroc_merged_across_devices_equals_one_device():
    """DDP's merge (the metric's reduce function on the stacked states) onto a common grid."""
    from lt_imbalance.metrics import BinnedAUROC

    g = torch.Generator().manual_seed(1)
    targets = torch.randint(0, 5, (600,), generator=g)
    probs = (3 * torch.randn(600, 5, generator=g) + 4 * torch.nn.functional.one_hot(targets, 5)).softmax(1)
    probs[:300] = probs[:300] ** 0.2 / (probs[:300] ** 0.2).sum(1, keepdim=True)  # ranges differ per device
    whole, parts = BinnedAUROC(5), [BinnedAUROC(5), BinnedAUROC(5), BinnedAUROC(5)]
    whole.update(probs, targets)
    parts[0].update(probs[:300], targets[:300])
    parts[1].update(probs[300:], targets[300:])  # parts[2] saw nothing
    merged = BinnedAUROC(5)
    merged.histogram = merged._merge(torch.stack([p.histogram for p in parts]))
    assert merged.histogram[:, 2:].sum() == whole.histogram[:, 2:].sum() == 600 * 5  # no count lost
    assert merged.compute().item() == pytest.approx(whole.compute().item(), abs=1e-4)


def test_balanced_accuracy_standard_error_against_a_hand_computation():
    from lt_imbalance.metrics import balanced_accuracy_se

    # class 0: 3 of 4 right (p = 4/6, n = 4); class 1: 1 of 2 right (p = 2/4, n = 2); class 2: no images
    confusion = torch.tensor([[3, 1, 0], [1, 1, 0], [0, 0, 0]])
    expected = (((4 / 6) * (2 / 6) / 4 + 0.5 * 0.5 / 2) ** 0.5) / 2
    assert balanced_accuracy_se(confusion) == pytest.approx(expected)
    all_right = ((6 / 7) * (1 / 7) / 5 * 3) ** 0.5 / 3  # 5 of 5 per class: still uncertain, not 0
    assert balanced_accuracy_se(torch.eye(3, dtype=torch.long) * 5) == pytest.approx(all_right)
