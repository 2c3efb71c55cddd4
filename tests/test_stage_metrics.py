"""Validation and test judge the outputs as deployed: with a target prior, the headline confusion is
the re-weighted model's and the model as trained is kept beside it (hand-computed case)."""

import torch

from lt_imbalance.label_shift import TargetPrior
from lt_imbalance.post_processor import PostProcessor
from lt_imbalance.stage_metrics import StageMetrics


def test_with_a_target_prior_validation_scores_the_adapted_model_and_keeps_the_model_as_trained():
    outputs = PostProcessor(2)
    outputs.assume_prior(torch.tensor([0.9, 0.1], dtype=torch.float64), "the training mix")
    # logits favour class 0 by log 3 on both images: as trained both are called 0; re-weighted to uniform the
    # logits become z - log p_model = [log 3 - log 0.9, -log 0.1] = [1.204, 2.303]: both are called 1
    logits = torch.tensor([[3.0, 1.0], [3.0, 1.0]]).log()
    targets = torch.tensor([0, 1])
    outputs.set_target(TargetPrior("uniform", torch.tensor([0.5, 0.5], dtype=torch.float64)))
    metrics = StageMetrics(2)
    metrics.update("val", logits, targets, outputs)
    results = metrics.compute("val", 0, [9, 1], outputs)
    assert results["val"].confusion.tolist() == [[0, 1], [0, 1]]  # the adapted model
    assert results["val_as_trained"].confusion.tolist() == [[1, 0], [1, 0]]  # the model under its own prior
    outputs.set_target(None)
    metrics.update("val", logits, targets, outputs)
    results = metrics.compute("val", 1, [9, 1], outputs)
    assert results["val"].confusion.tolist() == [[1, 0], [1, 0]] and "val_as_trained" not in results
