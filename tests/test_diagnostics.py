"""Overfitting monitor and margin statistics against hand computations; the 2-D demo; TensorBoard."""

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
import yaml

from lt_imbalance import ImbalancedClassifier
from lt_imbalance.callbacks import MarginStatistics, OverfittingMonitor
from lt_imbalance.cli import build_cli
from lt_imbalance.demo2d import Blobs2D, margin_demo
from lt_imbalance.metrics import logit_margins, per_class_mean

ROOT = Path(__file__).resolve().parents[1]


def test_margin_closed_form():
    logits = torch.tensor([[2.0, 1.0, 0.5], [0.0, 3.0, 1.0], [1.0, 1.0, 1.0]])
    assert logit_margins(logits, torch.tensor([0, 2, 1])).tolist() == [1.0, -2.0, 0.0]


def test_per_class_mean_closed_form():
    values, targets = torch.tensor([1.0, 3.0, 10.0, 4.0]), torch.tensor([0, 0, 2, 2])
    out = per_class_mean(values, targets, 4)
    assert out[0] == 2.0 and out[2] == 7.0 and torch.isnan(out[1]) and torch.isnan(out[3])


def _fit_with(callbacks, epochs=2):
    data = Blobs2D(counts=(40, 40, 4), test_per_class=10, batch_size=16)
    torch.manual_seed(0)
    model = ImbalancedClassifier("mlp", backbone_kwargs={"hidden": (16,)}, class_counts=data.class_counts, in_channels=2, lr=0.05)
    trainer = pl.Trainer(max_epochs=epochs, callbacks=callbacks, logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, data)
    return data, model


def test_overfitting_monitor_matches_a_hand_computation():
    monitor = OverfittingMonitor(max_per_class=10)
    data, model = _fit_with([monitor])
    subset = data.train_eval_dataset(10, 0)
    assert torch.bincount(subset.labels).tolist() == [10, 10, 4]  # capped per class, fixed seed
    model.eval()
    for split, dataset in (("train", subset), ("val", data.val_set)):
        with torch.no_grad():
            logits = model(dataset.features)
        for c in range(3):
            rows = dataset.labels == c
            loss = sum(F.cross_entropy(logits[i : i + 1], dataset.labels[i : i + 1]).item() for i in torch.nonzero(rows).flatten().tolist()) / rows.sum().item()
            acc = (logits[rows].argmax(1) == c).float().mean().item()
            assert monitor.last["stats"][split]["loss"][c].item() == pytest.approx(loss, rel=1e-4)
            assert monitor.last["stats"][split]["acc"][c].item() == pytest.approx(acc)
    gap = monitor.last["stats"]["train"]["acc"] - monitor.last["stats"]["val"]["acc"]
    assert torch.allclose(monitor.last["gap_acc"], gap)
    assert model.results["val"]["metrics"]["gap_acc_few"] == pytest.approx(gap[2].item())  # class 2 has 4 images


def test_margin_statistics_per_class():
    margins = MarginStatistics(max_per_class=10)
    data, model = _fit_with([margins], epochs=1)
    model.eval()
    with torch.no_grad():
        logits = model(data.val_set.features)
    expected = logit_margins(logits, data.val_set.labels)
    for c in range(3):
        assert torch.allclose(margins.last["val"][c], expected[data.val_set.labels == c], atol=1e-5)


def test_two_d_demo_runs_in_seconds_and_draws(tmp_path):
    scores = margin_demo(tmp_path / "demo.png", epochs=3)
    assert (tmp_path / "demo.png").stat().st_size > 10_000
    assert set(scores) >= {"ERM", "CC-LS (eps 0 -> 0.3)"} and all(0 <= s <= 1 for s in scores.values())


def test_diagnostics_reach_tensorboard_through_the_cli(tmp_path, monkeypatch):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.chdir(ROOT)
    cfg = yaml.safe_load((ROOT / "configs" / "digits_lt_erm.yaml").read_text())
    cfg["trainer"].update(max_epochs=2, default_root_dir=str(tmp_path), enable_progress_bar=False)
    cfg["trainer"]["callbacks"] = [{"class_path": "OverfittingMonitor", "init_args": {"max_per_class": 20}}, {"class_path": "MarginStatistics"}]
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    cli = build_cli(["fit", "--config", str(tmp_path / "cfg.yaml")])
    log_dir = Path(cli.trainer.log_dir)
    events = EventAccumulator(str(log_dir)).Reload()
    assert {"overfit/gap_acc", "overfit/gap_acc_few", "overfit/gap_acc/class_9"} <= set(events.Tags()["scalars"])
    assert "overfit/gap_vs_frequency" in events.Tags()["images"] and "margin/per_class" in events.Tags()["images"]
    assert (log_dir / "figures" / "overfit_gap.png").is_file() and (log_dir / "figures" / "margins_test.png").is_file()
    assert "train - val accuracy gap, few-shot" in (log_dir / "results_val.md").read_text()
