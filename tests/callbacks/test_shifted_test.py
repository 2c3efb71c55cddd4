"""Shifted test distributions against a hand computation on a 3-class confusion matrix, and
through the command."""

import json
from pathlib import Path

import pytest
import torch

from lt_imbalance.callbacks.shifted_test import ShiftedTestDistributions, parse_distribution
from lt_imbalance.commands.lightning_cli import build_cli
from lt_imbalance.metrics import reweighted_metrics, shifted_class_prior

ROOT = Path(__file__).resolve().parents[2]
# 10 test images per class; recalls 0.9, 0.7, 0.5; training counts make class 0 the head
CONFUSION = torch.tensor([[9, 1, 0], [2, 7, 1], [3, 2, 5]])
COUNTS = [100, 10, 1]


def test_priors_follow_the_training_order():
    assert shifted_class_prior(COUNTS, "forward", 4).tolist() == pytest.approx([4 / 7, 2 / 7, 1 / 7])
    assert shifted_class_prior(COUNTS, "backward", 4).tolist() == pytest.approx([1 / 7, 2 / 7, 4 / 7])
    assert shifted_class_prior(COUNTS, "uniform").tolist() == pytest.approx([1 / 3] * 3)
    # the order is by training count, not by index: class 2 is the head here
    assert shifted_class_prior([5, 1, 50], "forward", 4).tolist() == pytest.approx([2 / 7, 1 / 7, 4 / 7])


def test_reweighted_accuracy_and_macro_f1_by_hand():
    forward = reweighted_metrics(CONFUSION, shifted_class_prior(COUNTS, "forward", 4))
    assert forward["acc"] == pytest.approx((4 * 0.9 + 2 * 0.7 + 1 * 0.5) / 7)
    # re-weighted columns (x 7): 4.3, 2.0, 0.7 -> precisions 36/43, 0.7, 5/7; F1 648/747, 0.7, 10/17
    assert forward["macro_f1"] == pytest.approx((648 / 747 + 0.7 + 10 / 17) / 3)
    backward = reweighted_metrics(CONFUSION, shifted_class_prior(COUNTS, "backward", 4))
    assert backward["acc"] == pytest.approx((0.9 + 2 * 0.7 + 4 * 0.5) / 7)
    assert reweighted_metrics(CONFUSION, shifted_class_prior(COUNTS, "uniform"))["acc"] == pytest.approx(0.7)
    # an imbalanced test matrix gives the same answer: only each row's proportions matter
    assert reweighted_metrics(CONFUSION * torch.tensor([[3], [1], [2]]), shifted_class_prior(COUNTS, "forward", 4)) == pytest.approx(
        forward
    )


@pytest.mark.parametrize("name", ["forward", "backward_0.5", "sideways_10", "uniform_3"])
def test_bad_distribution_names_say_the_form(name):
    with pytest.raises(ValueError, match="write forward_<ratio>"):
        parse_distribution(name)


def test_a_class_without_test_samples_is_refused():
    with pytest.raises(ValueError, match="classes \\[1\\] have none"):
        reweighted_metrics(torch.tensor([[2, 0], [0, 0]]), torch.tensor([0.5, 0.5]))


def test_the_table_after_test_through_the_command(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    cli = build_cli(
        ["fit", "--config", "configs/digits_lt_erm.yaml", "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "3",
         "--trainer.default_root_dir", str(tmp_path), "--trainer.callbacks+=ShiftedTestDistributions",
         "--trainer.callbacks.distributions=[forward_10, uniform, backward_10]"]
    )  # fmt: skip
    folder = Path(cli.trainer.log_dir)
    values = json.loads((folder / "results_test_shifted.json").read_text())
    assert list(values) == ["forward_10", "uniform", "backward_10"]
    test = cli.model.evaluations["test"]
    assert values["uniform"]["acc"] == pytest.approx(test.metrics["balanced_acc"])  # the balanced test set itself
    assert values["forward_10"] == pytest.approx(ShiftedTestDistributions(["forward_10"]).compute(test)["forward_10"])
    assert "| top-1 accuracy |" in (folder / "results_test_shifted.md").read_text()
