"""Margin statistics against a hand computation of z_y - max_{k != y} z_k."""

import torch

from helpers import fit_blobs
from lt_imbalance.callbacks import MarginStatistics
from lt_imbalance.metrics import logit_margins


def test_margin_closed_form():
    logits = torch.tensor([[2.0, 1.0, 0.5], [0.0, 3.0, 1.0], [1.0, 1.0, 1.0]])
    assert logit_margins(logits, torch.tensor([0, 2, 1])).tolist() == [1.0, -2.0, 0.0]


def test_margin_statistics_per_class(tmp_path):
    margins = MarginStatistics(max_per_class=10)
    data, model = fit_blobs(tmp_path, [margins], epochs=1)
    assert list((tmp_path / "run_0" / "figures").glob("margins_*.png"))  # the run's own folder, not the working directory
    model.eval()
    with torch.no_grad():
        logits = model(data.val_set.features)
    expected = logit_margins(logits, data.val_set.labels)
    for c in range(3):
        assert torch.allclose(margins.last["val"][c], expected[data.val_set.labels == c], atol=1e-5)
