"""The trial's objective (mean of the last validations) and when the default pruner may decide."""

import pytest

from lt_imbalance.tuning.trial_reporter import objective_value, prune_from


def test_the_objective_is_the_mean_of_the_last_three_validations():
    assert objective_value([0.1, 0.5, 0.6, 0.7]) == pytest.approx(0.6)
    assert objective_value([0.4]) == 0.4 and objective_value([0.2, 0.4]) == pytest.approx(0.3)


def test_the_default_pruner_waits_for_the_warm_up_and_two_thirds_of_training():
    assert prune_from(max_epochs=20, warmup_epochs=5) == 14  # two thirds of 20 epochs, rounded up
    assert prune_from(max_epochs=30, warmup_epochs=25) == 25  # a long warm-up
    assert prune_from(max_epochs=3, warmup_epochs=0) == 2


def _validation(reporter, epoch: int, predicted_classes: int, tmp_path):
    """One validation end of a 3-class model predicting ``predicted_classes`` classes."""
    from types import SimpleNamespace

    import torch

    confusion = torch.zeros(3, 3)
    confusion[:, :predicted_classes] = 1  # rows: the true class; columns: the prediction
    module = SimpleNamespace(evaluations={"val": SimpleNamespace(confusion=confusion)})
    trainer = SimpleNamespace(
        sanity_checking=False, callback_metrics={"val/balanced_acc": torch.tensor(1 / 3)}, is_global_zero=True,
        current_epoch=epoch, strategy=SimpleNamespace(broadcast=lambda value: value), should_stop=False,
    )  # fmt: skip
    reporter.on_validation_end(trainer, module)
    return trainer


def test_a_trial_predicting_one_class_for_two_validations_in_a_row_after_the_warm_up_is_stopped_as_collapsed(tmp_path):
    import json

    from lt_imbalance.tuning.trial_reporter import TrialReporter

    reporter = TrialReporter("unused", "s", 0, "val/balanced_acc", str(tmp_path), pruner="median", report_steps=False)
    reporter.collapse_from = 1  # a one-epoch warm-up
    assert not _validation(reporter, 0, 1, tmp_path).should_stop  # in the warm-up: not counted
    assert not _validation(reporter, 1, 1, tmp_path).should_stop  # once
    assert not _validation(reporter, 2, 2, tmp_path).should_stop  # two classes again: the count starts over
    assert not _validation(reporter, 3, 1, tmp_path).should_stop
    assert _validation(reporter, 4, 1, tmp_path).should_stop  # twice in a row
    assert json.loads((tmp_path / "collapsed.json").read_text()) == {"epoch": 4, "value": pytest.approx(1 / 3), "in_a_row": 2}
    assert not (tmp_path / "pruned.json").exists()
    unwatched = TrialReporter("unused", "s", 0, "val/balanced_acc", str(tmp_path / "r"), pruner="none", report_steps=False)
    assert not any(_validation(unwatched, epoch, 1, tmp_path).should_stop for epoch in range(4))  # a recipe runs to the end
