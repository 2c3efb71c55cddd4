"""The study's ensemble from trials with real checkpoints (two digits models): ``ensemble.ckpt``
from the trials' own checkpoints, the per-seed rebuild from the members' retrains tested by
``lt-imbalance test``, and the test-set lines paired by seed."""

import json
import shutil
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch

from lt_imbalance.fit_processes import FitProcesses
from lt_imbalance.inference.trained_model import load_trained
from lt_imbalance.rundir import newest_last_checkpoint
from lt_imbalance.tuning.answer import ensemble_per_seed
from lt_imbalance.tuning.study_ensemble import EnsembleChoice, choose, gain_lines, paired_over_seeds, write_deployable

ROOT = Path(__file__).resolve().parents[2]


def _run_root(checkpoint):
    """The folder above ``lightning_logs`` of a fixture's run."""
    return checkpoint.parents[3]


@pytest.fixture()
def study_with_checkpoints(tmp_path, digits_checkpoint, digits_balanced_softmax_checkpoint):
    """Two complete trials whose folders hold their fit's run (as a tuner's trial folder does) and
    validation outputs that complement each other, so the greedy ensemble takes both."""
    targets = np.repeat(np.arange(10), 4)
    right = [np.arange(40) % 2 == 0, np.arange(40) % 2 == 1]
    study = optuna.create_study(direction="maximize")
    for number, (checkpoint, ok) in enumerate(zip((digits_checkpoint, digits_balanced_softmax_checkpoint), right)):
        folder = tmp_path / "study" / "trials" / f"{number:04d}"
        folder.mkdir(parents=True)
        (folder / "run").symlink_to(_run_root(checkpoint), target_is_directory=True)
        p = np.full((40, 10), 0.05)
        p[np.arange(40), np.where(ok, targets, (targets + 1) % 10)] = np.where(ok, 0.6, 0.5)  # right: more confident
        np.savez(folder / "val_outputs.npz", targets=targets, deployed=p)
        attrs = {"overrides": "{}", "folder": str(folder), "recipe": ["base", "balanced_softmax"][number]}
        study.add_trial(optuna.trial.create_trial(value=0.5, user_attrs=attrs))
    return study, tmp_path / "study"


def test_the_deployable_ensemble_is_the_trials_checkpoints_averaged(study_with_checkpoints, digits_checkpoint):
    study, out = study_with_checkpoints
    choice = choose(study, "val/balanced_acc", out)
    assert choice.weights == {0: 0.5, 1: 0.5} and choice.value == 1.0 and choice.preferred
    path = write_deployable(choice, study, out, "uniform")
    assert path == out / "ensemble.ckpt"
    model, _ = load_trained(path)
    member, _ = load_trained(digits_checkpoint)
    assert torch.equal(model.net.networks[0].head.weight, member.net.head.weight)  # trial 0's own final weights
    assert model.outputs.target_spec == "uniform"


def test_the_ensemble_is_rebuilt_per_seed_from_the_retrains_and_tested(study_with_checkpoints, digits_checkpoint, monkeypatch):
    study, out = study_with_checkpoints
    monkeypatch.chdir(ROOT)
    shutil.copy(ROOT / "configs" / "digits_lt_erm.yaml", out / "base.yaml")
    choice = EnsembleChoice({0: 0.5, 1: 0.5}, 1.0, 0, 0.5, 0.5, 0.1, 40, 2, 0, 0)
    cells = ["best=base=trial0", "balanced_softmax=trial1"]
    models = {(cell, 0): [newest_last_checkpoint(out / "trials" / trial / "run")] for cell, trial in zip(cells, ("0000", "0001"))}
    records = ensemble_per_seed(choice, cells, models, [0, 1], out, "uniform", FitProcesses())
    assert records[1] == {"cell": "ensemble", "seed": 1, "error": "a member's models of this seed are missing"}
    tested = records[0]
    assert tested["cell"] == "ensemble" and 0 <= tested["metrics"]["balanced_acc"] <= 1, tested
    assert (out / "retrain" / "ensemble" / "seed0" / "ensemble.ckpt").is_file()
    again = ensemble_per_seed(choice, cells, models, [0], out, "uniform", FitProcesses())  # finished: reused, not run again
    assert again[0] == json.loads((out / "retrain" / "ensemble" / "seed0" / "result.json").read_text()) == tested

    # the test-set lines: paired by seed against the single best and the recipe best on validation
    other = {"cell": "best=base=trial0", "seed": 0, "metrics": {"balanced_acc": tested["metrics"]["balanced_acc"] - 0.02}}
    text = "\n".join(gain_lines([tested, other], study, "balanced_acc"))
    assert paired_over_seeds([tested, other], "ensemble", "best=base=trial0", "balanced_acc") == pytest.approx(
        (0.02, float("nan"), 1), nan_ok=True
    )
    assert "against the single best, `best=base=trial0`: balanced_acc +2.0 (one seed: no standard error)" in text
    assert "against the portfolio recipe" not in text  # that recipe (base) is the single best's cell: said once


def test_a_report_run_again_removes_the_answer_files_it_no_longer_writes(tmp_path):
    """A resumed study whose answer is now the single best leaves no stale ensemble.ckpt or bag.ckpt
    of an earlier report beside it (a user would deploy the wrong file)."""
    from types import SimpleNamespace

    import optuna

    from lt_imbalance.tuning.answer import find_answer

    study = optuna.create_study(direction="maximize")
    study.add_trial(optuna.trial.create_trial(value=0.5, user_attrs={"overrides": "{}"}))
    for name in ("ensemble.ckpt", "bag.ckpt"):
        (tmp_path / name).write_text("an earlier report's")
    settings = SimpleNamespace(seeds=[], monitor="val/balanced_acc", out=tmp_path)
    answer = find_answer(SimpleNamespace(settings=settings, study=study, base={"prior": "uniform"}, folds=0), {})
    assert answer.deploy == "the single best (best.yaml)" and answer.ensemble_file is None
    assert not (tmp_path / "ensemble.ckpt").exists() and not (tmp_path / "bag.ckpt").exists()


def test_among_trials_level_on_the_monitor_the_winner_has_the_lowest_log_loss(tmp_path):
    """Trials that predict every image alike tie on balanced accuracy; the winner is then the one
    whose probabilities are surest of the true classes (by hand: -mean log p), not the earliest."""
    import numpy as np
    import optuna

    from lt_imbalance.tuning.ensemble import nll
    from lt_imbalance.tuning.trial_files import best_trial

    targets = np.array([0, 1, 1])
    sure = {"targets": targets, "deployed": np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7]])}
    unsure = {"targets": targets, "deployed": np.array([[0.6, 0.4], [0.4, 0.6], [0.45, 0.55]])}
    assert nll(sure["deployed"], targets) == pytest.approx(-(np.log(0.9) + np.log(0.8) + np.log(0.7)) / 3)
    study = optuna.create_study(direction="maximize")
    for number, (value, outputs) in enumerate([(0.9, unsure), (0.9, None), (0.9, sure), (0.8, sure)]):
        folder = tmp_path / f"t{number}"
        folder.mkdir()
        if outputs is not None:
            np.savez(folder / "val_outputs.npz", **outputs)
        study.add_trial(optuna.trial.create_trial(value=value, user_attrs={"folder": str(folder)}))
    assert study.best_trial.number == 0 and best_trial(study, tmp_path).number == 2
    alone = optuna.create_study(direction="maximize")
    for value in (0.7, 0.9):
        alone.add_trial(optuna.trial.create_trial(value=value))
    assert best_trial(alone, tmp_path).number == 1  # no tie: the best value, files or not
