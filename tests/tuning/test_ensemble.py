"""The greedy ensemble on constructed cases: complementary trials are combined, a trial that only
adds noise is not chosen; and the report's ensemble section from saved validation outputs."""

import json

import numpy as np
import optuna
import pytest

from lt_imbalance.tuning.ensemble import greedy_ensemble, score
from lt_imbalance.tuning.selection_stats import paired_difference
from lt_imbalance.tuning.study_ensemble import choose, report_lines


def _probabilities(targets: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Confident (0.9) on the images it gets right; diffident and wrong (0.40 vs 0.35) elsewhere."""
    p = np.full((len(targets), 3), 0.05)
    rows = np.arange(len(targets))
    p[rows[right], targets[right]] = 0.9
    wrong = ~right
    p[rows[wrong]] = 0.25
    p[rows[wrong], targets[wrong]] = 0.35
    p[rows[wrong], (targets[wrong] + 1) % 3] = 0.40
    return p


def _study(probabilities: dict, targets: np.ndarray, out):
    """One complete trial per entry of ``probabilities``, its validation outputs in ``out/trials/NNNN``."""
    study = optuna.create_study(direction="maximize")
    for number, p in probabilities.items():
        study.add_trial(optuna.trial.create_trial(value=score(p, targets, "balanced_acc"), user_attrs={"overrides": "{}"}))
        folder = out / "trials" / f"{number:04d}"
        folder.mkdir(parents=True)
        np.savez(folder / "val_outputs.npz", targets=targets, deployed=p)
    return study


def _section(study, out) -> str:
    choice = choose(study, "val/balanced_acc", out)
    return "\n".join(report_lines(choice, "val/balanced_acc", None))


def _case():
    targets = np.repeat(np.arange(3), 10)
    index = np.arange(30)
    a = _probabilities(targets, index % 3 != 0)  # wrong on every third image
    b = _probabilities(targets, index % 3 != 1)  # wrong on others: the two complement each other
    noise = np.random.default_rng(0).dirichlet(np.ones(3), size=30)
    return targets, {0: a, 1: b, 2: noise}


def test_complementary_trials_are_combined_and_noise_is_left_out():
    targets, probabilities = _case()
    assert score(probabilities[0], targets, "balanced_acc") == pytest.approx(2 / 3)
    ensemble = greedy_ensemble(probabilities, targets, "balanced_acc")
    assert ensemble.weights == {0: 0.5, 1: 0.5} and ensemble.value == 1.0  # the noise trial (2) is not a member
    assert score(ensemble.probabilities(probabilities), targets, "balanced_acc") == ensemble.value


def test_a_single_best_trial_that_nothing_improves_stands_alone():
    targets, probabilities = _case()
    probabilities[3] = np.eye(3)[targets] * 0.9 + 0.1 / 3  # right everywhere
    assert greedy_ensemble(probabilities, targets, "acc").weights == {3: 1.0}


def test_the_report_gives_the_ensemble_beside_the_single_best_with_the_paired_error(tmp_path):
    targets, probabilities = _case()
    study = _study(probabilities, targets, tmp_path)
    text = _section(study, tmp_path)
    gain, se = paired_difference(targets, targets, probabilities[0].argmax(1), "balanced_acc")  # the ensemble is right everywhere
    assert "trial 0 (0.50), trial 1 (0.50)" in text and f"a gain of {gain:.4f} ± {se:.4f}" in text
    assert "deploy the ensemble" in text and "more than 2 standard errors" in text  # gain 1/3 against its paired error
    saved = json.loads((tmp_path / "ensemble.json").read_text())
    assert saved["deploy"] == "ensemble.ckpt"
    assert saved["value"] == 1.0 and [m["trial"] for m in saved["members"]] == [0, 1] and saved["single_best"]["trial"] == 0


def test_another_workers_trials_are_found_and_an_unreadable_best_is_said_not_a_crash(tmp_path):
    """Two workers share a study, each with its own --out: a trial records its folder, so the report
    reads the other worker's outputs; when the study's best left none readable (another machine),
    the ensemble is compared with the best trial it has and the report says which was left out."""
    targets, probabilities = _case()
    study = optuna.create_study(direction="maximize")
    here, there = tmp_path / "main", tmp_path / "worker_2"
    for number, p in probabilities.items():
        folder = (there if number == 1 else here) / "trials" / f"{number:04d}"
        folder.mkdir(parents=True)
        np.savez(folder / "val_outputs.npz", targets=targets, deployed=p)
        attrs = {"overrides": "{}", "folder": str(folder)}
        study.add_trial(optuna.trial.create_trial(value=score(p, targets, "balanced_acc"), user_attrs=attrs))
    text = _section(study, here)
    assert "trial 0 (0.50), trial 1 (0.50)" in text and "left out" not in text  # trial 1 read from worker_2's folder
    saved = json.loads((here / "ensemble.json").read_text())
    assert saved["members"][1]["config"] == str(there / "trials" / "0001" / "config.yaml")

    best = np.eye(3)[targets] * 0.9 + 0.1 / 3  # right everywhere: the study's best, its outputs on another machine
    study.add_trial(optuna.trial.create_trial(value=1.0, user_attrs={"overrides": "{}", "folder": str(tmp_path / "elsewhere")}))
    text = _section(study, here)
    assert study.best_trial.number == 3 and best.argmax(1).tolist() == targets.tolist()
    assert "1 complete trial(s) left out" in text and "among them the study's best, trial 3" in text
    assert "against the single best's (trial 0)" in text  # the best of the trials it could read


def test_the_report_says_when_the_ensemble_is_the_single_best_alone(tmp_path):
    targets, probabilities = _case()
    probabilities[3] = np.eye(3)[targets] * 0.9 + 0.1 / 3  # right everywhere: nothing improves it
    study = _study(probabilities, targets, tmp_path)
    text = _section(study, tmp_path)
    assert (
        "the ensemble is the single best trial alone (trial 3, val/balanced_acc 1.0000)" in text
        and "deploy the single best (best.yaml)" in text
    )
    assert "a gain of" not in text and "deploy the ensemble" not in text and "within 2 standard" not in text
