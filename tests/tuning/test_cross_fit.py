"""Cross-fitted judging: the rule that turns it on, the out-of-fold outputs put together from the
folds' files, and the trial's value computed from them by hand."""

import numpy as np
import pytest

from lt_imbalance.errors import BadValue
from lt_imbalance.tuning.cross_fit import DEFAULT_FOLDS, FEW_PER_CLASS, default_folds, fold_folder, judge, out_of_fold


def test_the_default_rule_cross_fits_when_a_class_has_few_validation_images():
    assert default_folds([40, 12, 9], False) == (
        DEFAULT_FOLDS,
        f"the validation split's smallest class has 9 images (fewer than {FEW_PER_CLASS})",
    )
    assert default_folds([40, 12, 10], False)[0] == 0
    assert default_folds([3, 1], True) == (0, "the data has its own validation split")


def _write_fold(folder, k, indices, targets, deployed):
    fold_folder(folder, k).mkdir(parents=True)
    np.savez(fold_folder(folder, k) / "val_outputs.npz", targets=targets, deployed=deployed, as_trained=deployed[:, ::-1], indices=indices)


def test_out_of_fold_outputs_are_the_folds_put_in_pool_order(tmp_path):
    rng = np.random.default_rng(0)
    targets = np.array([0, 1, 2, 0, 1, 2, 0, 0])
    probabilities = rng.dirichlet(np.ones(3), size=8)
    order = rng.permutation(8)
    positions = np.array([3, 5, 7, 11, 13, 17, 19, 23])  # pool positions of the training images
    for k, chunk in enumerate(np.array_split(order, 3)):
        _write_fold(tmp_path, k, positions[chunk], targets[chunk], probabilities[chunk])
    outputs = out_of_fold(tmp_path, 3)
    np.testing.assert_array_equal(outputs["indices"], positions)
    np.testing.assert_array_equal(outputs["targets"], targets)
    np.testing.assert_array_equal(outputs["deployed"], probabilities)
    np.testing.assert_array_equal(outputs["as_trained"], probabilities[:, ::-1])

    # balanced accuracy by hand: recall of each class of the argmax, averaged
    predicted = probabilities.argmax(1)
    by_hand = np.mean([(predicted[targets == c] == c).mean() for c in range(3)])
    record = judge(outputs, "balanced_acc")
    assert record["value"] == pytest.approx(by_hand, abs=1e-12) and record["se"] > 0
    assert record["as_trained"] == pytest.approx(np.mean([(probabilities[:, ::-1].argmax(1)[targets == c] == c).mean() for c in range(3)]))
    assert judge(outputs, "acc")["value"] == pytest.approx((predicted == targets).mean())
    with pytest.raises(BadValue, match="val/nll cannot be computed from out-of-fold predictions"):
        judge(outputs, "nll")


def test_folds_that_overlap_lack_a_file_or_lie_outside_the_pool_are_refused(tmp_path):
    p = np.full((2, 2), 0.5)
    _write_fold(tmp_path / "a", 0, np.array([1, 2]), np.array([0, 1]), p)
    _write_fold(tmp_path / "a", 1, np.array([2, 3]), np.array([1, 0]), p)
    with pytest.raises(BadValue, match="held out some images more than once"):
        out_of_fold(tmp_path / "a", 2)
    with pytest.raises(BadValue, match="fold 2 of .* has no val_outputs.npz"):
        out_of_fold(tmp_path / "a", 3)
    _write_fold(tmp_path / "b", 0, np.array([-1, -1]), np.array([0, 1]), p)
    _write_fold(tmp_path / "b", 1, np.array([4, 5]), np.array([1, 0]), p)
    with pytest.raises(BadValue, match="outside the training pool"):
        out_of_fold(tmp_path / "b", 2)


def test_a_collapsed_fit_makes_its_trial_pruned_and_labelled(tmp_path, monkeypatch):
    import json
    from pathlib import Path

    import optuna

    from lt_imbalance.tuning.settings import parse_args
    from lt_imbalance.tuning.study import Tuner

    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    space = tmp_path / "space.yaml"
    space.write_text("model.init_args.optimizer.init_args.lr: {float: [0.01, 0.1]}\n")  # small: checked quickly
    args = [
        "--config",
        "configs/digits_lt_erm.yaml",
        "--space",
        str(space),
        "--n_trials",
        "2",
        "--out",
        str(tmp_path / "s"),
        "--folds",
        "0",
    ]
    tuner = Tuner(parse_args(args))
    folder = tmp_path / "s" / "trials" / "0000"
    folder.mkdir(parents=True)

    def collapsed_fit(label, cmd, env, where):  # the fit process: stopped as collapsed at epoch 3
        (where / "fit.log").write_text("")
        (where / "collapsed.json").write_text(json.dumps({"epoch": 3, "value": 0.1, "in_a_row": 2}))
        return 0, False

    monkeypatch.setattr(tuner.processes, "run", collapsed_fit)
    trial = tuner.study.ask()
    with pytest.raises(optuna.TrialPruned, match="collapsed at epoch 3"):
        tuner.fit(trial, folder, "trial 0", {}, first=True)
    assert trial.user_attrs["collapsed"] == "trial 0: every validation image predicted as one class for 2 epochs in a row (to epoch 3)"


def test_the_study_decides_its_folds_once_and_a_resume_with_other_folds_is_refused(tmp_path, monkeypatch, capsys):
    from pathlib import Path

    from lt_imbalance.errors import UnsupportedCombination
    from lt_imbalance.tuning.preflight import choose_folds
    from lt_imbalance.tuning.settings import parse_args
    from lt_imbalance.tuning.study import Tuner

    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    space = tmp_path / "space.yaml"
    space.write_text("model.init_args.optimizer.init_args.lr: {float: [0.01, 0.1]}\n")  # small: checked quickly
    args = ["--config", "configs/digits_lt_erm.yaml", "--space", str(space), "--n_trials", "2", "--out", str(tmp_path / "s")]
    tuner = Tuner(parse_args(args))  # the holdout's tail classes have 2 validation images: on by default
    assert tuner.folds == DEFAULT_FOLDS and "smallest class has 2 images" in tuner.judging()
    assert tuner.study.user_attrs["folds"] == DEFAULT_FOLDS
    assert Tuner(parse_args(args)).folds == DEFAULT_FOLDS  # resumed: kept
    with pytest.raises(UnsupportedCombination, match="judges its trials with --folds 5; resume it with --folds 5"):
        Tuner(parse_args([*args, "--folds", "0"]))
    pool = {"val_source": "pool", "val_per_class": 20, "val_fraction": 0}
    config = tuner.base | {"data": {**tuner.base["data"], "init_args": {**tuner.base["data"]["init_args"], **pool}}}
    assert choose_folds(config, None) == (0, "every class has at least 20 validation images")
    assert choose_folds(config, 3) == (3, "--folds")
    with pytest.raises(SystemExit):
        parse_args([*args, "--folds", "1"])
    assert "--folds 1: cross-fitting needs at least 2 folds" in capsys.readouterr().err
