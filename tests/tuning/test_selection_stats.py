"""Selection statistics: the paired standard error against a hand computation, and the report's
selection lines built from two trials' saved validation outputs."""

import json

import numpy as np
import optuna
import pytest

from lt_imbalance.tuning.report import _selection
from lt_imbalance.tuning.selection_stats import expected_maximum, paired_difference


def test_the_paired_difference_of_balanced_accuracy_by_hand():
    targets = np.array([0, 0, 0, 1, 1])
    a, b = np.array([0, 0, 1, 1, 0]), np.array([0, 1, 1, 1, 1])
    # right: a [1 1 0 1 0], b [1 0 0 1 1]; d = [0 1 0 | 0 -1]; overall disagreement r = 2/5, m = 2 pseudo-images.
    # Class 0: mean 1/3; v = (1 + 2 r) / 5 - (1 / 5)^2 = 0.32 over 3 images. Class 1: mean -1/2; v = (1 + 2 r) / 4 - (1 / 4)^2
    # = 0.3875 over 2. diff = (1/3 - 1/2) / 2; SE = sqrt(0.32 / 3 + 0.3875 / 2) / 2
    diff, se = paired_difference(targets, a, b, "balanced_acc")
    assert diff == pytest.approx(-1 / 12) and se == pytest.approx(np.sqrt(0.32 / 3 + 0.3875 / 2) / 2)
    assert paired_difference(targets, a, b, "macro_f1") is None


def test_the_stated_error_covers_the_true_difference_as_often_as_it_claims_with_tiny_classes():
    """Two models scored on 10 classes of 1 to 20 validation images, 2,000 draws of the split: the true
    difference lies within two stated standard errors about 95% of the time (a class with one image,
    or whose few images agree by chance, counted as certain, it held only about 78% of the time)."""
    rng = np.random.default_rng(0)
    n = np.array([1, 1, 2, 2, 3, 3, 5, 8, 13, 20])
    targets = np.repeat(np.arange(10), n)
    p_a, flip = rng.uniform(0.3, 0.95, 10), rng.uniform(0.05, 0.4, 10)  # b is a with some images flipped
    true = np.mean(p_a - (p_a * (1 - flip) + (1 - p_a) * flip))
    covered = plain = 0
    for _ in range(2000):
        right_a = rng.random(len(targets)) < p_a[targets]
        right_b = right_a ^ (rng.random(len(targets)) < flip[targets])
        diff, se = paired_difference(targets, np.where(right_a, targets, -1), np.where(right_b, targets, -1), "balanced_acc")
        covered += abs(diff - true) <= 2 * se
        d = right_a.astype(float) - right_b
        sample = np.sqrt(sum(d[targets == c].var(ddof=1) / k if k > 1 else 0.0 for c, k in enumerate(n))) / 10
        plain += abs(diff - true) <= 2 * sample
    assert 0.91 <= covered / 2000 <= 0.98
    assert plain / 2000 < 0.85  # the sample variance alone: too sure


def test_pairing_sees_through_shared_errors():
    rng = np.random.default_rng(0)
    targets = np.repeat(np.arange(4), 50)
    a = np.where(rng.random(200) < 0.8, targets, (targets + 1) % 4)
    b = a.copy()
    b[:5] = (targets[:5] + 1) % 4  # b differs from a on five images only
    diff, se = paired_difference(targets, a, b, "balanced_acc")
    unpaired = np.sqrt(2 * np.mean([0.8 * 0.2 / 50] * 4) / 4)  # as if scored on different images: about 0.04
    assert se < unpaired / 3


def test_the_expected_maximum_of_equal_trials():
    assert expected_maximum(1) == pytest.approx(0.0, abs=1e-9)
    assert expected_maximum(2) == pytest.approx(1 / np.sqrt(np.pi), abs=1e-6)
    assert expected_maximum(10) == pytest.approx(1.5388, abs=1e-3)


def test_the_report_pairs_the_winner_and_the_runner_up_and_says_the_winner_is_optimistic(tmp_path):
    study = optuna.create_study(direction="maximize")
    targets = np.array([0, 0, 0, 1, 1])
    for number, (value, predicted) in enumerate([(7 / 12, [0, 0, 1, 1, 0]), (8 / 12, [0, 1, 1, 1, 1])]):
        study.add_trial(optuna.trial.create_trial(value=value, user_attrs={"overrides": json.dumps({}), "se": 0.2}))
        folder = tmp_path / "trials" / f"{number:04d}"
        folder.mkdir(parents=True)
        np.savez(folder / "val_outputs.npz", targets=targets, deployed=np.eye(2)[predicted])
    text = "\n".join(_selection(study, "val/balanced_acc", tmp_path))
    assert "- winner: trial 1" in text and "- runner-up: trial 0" in text
    assert f"the gap {1 / 12:.4f} ± {np.sqrt(0.32 / 3 + 0.3875 / 2) / 2:.4f}: within noise of each other" in text
    assert "same 5 validation images" in text
    assert (
        f"lies on average {expected_maximum(2):.1f} standard errors above their common value, here about {expected_maximum(2) * 0.2:.3f}"
        in text
    )


def test_a_config_with_several_roles_is_retrained_once(tmp_path):
    from lt_imbalance.tuning.answer import group_roles

    a, b = {"model": {"lr": 0.1}}, {"model": {"lr": 0.2}}
    groups = group_roles(
        [("best", tmp_path / "best.yaml", b), ("base", tmp_path / "base.yaml", a), ("balanced_softmax", tmp_path / "bs.yaml", b)]
    )
    assert groups == [("best=balanced_softmax", tmp_path / "best.yaml", b), ("base", tmp_path / "base.yaml", a)]
