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
