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
    # right: a [1 1 0 1 0], b [1 0 0 1 1]; d = [0 1 0 | 0 -1]. Class 0: mean 1/3, sample variance 1/3 over 3 images;
    # class 1: mean -1/2, sample variance 1/2 over 2. diff = (1/3 - 1/2) / 2; SE = sqrt(1/9 + 1/4) / 2
    diff, se = paired_difference(targets, a, b, "balanced_acc")
    assert diff == pytest.approx(-1 / 12) and se == pytest.approx(np.sqrt(1 / 9 + 1 / 4) / 2)
    assert paired_difference(targets, a, b, "macro_f1") is None


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
    assert f"the gap {1 / 12:.4f} ± {np.sqrt(1 / 9 + 1 / 4) / 2:.4f}: within noise of each other" in text
    assert "same 5 validation images" in text
    assert (
        f"lies on average {expected_maximum(2):.1f} standard errors above their common value, here about {expected_maximum(2) * 0.2:.3f}"
        in text
    )


def test_a_config_with_several_roles_is_retrained_once(tmp_path):
    from lt_imbalance.tuning.report import retrain_groups

    a, b = {"model": {"lr": 0.1}}, {"model": {"lr": 0.2}}
    groups = retrain_groups(
        [("best", tmp_path / "best.yaml", b), ("base", tmp_path / "base.yaml", a), ("balanced_softmax", tmp_path / "bs.yaml", b)]
    )
    assert groups == [(["best", "balanced_softmax"], str(tmp_path / "best.yaml")), (["base"], str(tmp_path / "base.yaml"))]
