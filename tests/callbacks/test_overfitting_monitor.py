"""The diagnostics (overfitting monitor, margin statistics) against hand computations, and through
the CLI into TensorBoard and the results table."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml

from helpers import fit_blobs
from lt_imbalance.callbacks import OverfittingMonitor
from lt_imbalance.commands.lightning_cli import build_cli
from lt_imbalance.metrics import per_class_mean

ROOT = Path(__file__).resolve().parents[2]


def test_per_class_mean_closed_form():
    values, targets = torch.tensor([1.0, 3.0, 10.0, 4.0]), torch.tensor([0, 0, 2, 2])
    out = per_class_mean(values, targets, 4)
    assert out[0] == 2.0 and out[2] == 7.0 and torch.isnan(out[1]) and torch.isnan(out[3])


def test_overfitting_monitor_matches_a_hand_computation(tmp_path):
    monitor = OverfittingMonitor(max_per_class=10)
    data, model = fit_blobs(tmp_path, [monitor])
    subset = data.train_eval_dataset(10, 0)
    assert torch.bincount(subset.labels).tolist() == [10, 10, 4]  # capped per class, fixed seed
    model.eval()
    for split, dataset in (("train", subset), ("val", data.val_set)):
        with torch.no_grad():
            logits = model(dataset.features)
        for c in range(3):
            rows = dataset.labels == c
            loss = (
                sum(F.cross_entropy(logits[i : i + 1], dataset.labels[i : i + 1]).item() for i in torch.nonzero(rows).flatten().tolist())
                / rows.sum().item()
            )
            acc = (logits[rows].argmax(1) == c).float().mean().item()
            assert monitor.last["stats"][split]["loss"][c].item() == pytest.approx(loss, rel=1e-4)
            assert monitor.last["stats"][split]["acc"][c].item() == pytest.approx(acc)
    gap = monitor.last["stats"]["train"]["acc"] - monitor.last["stats"]["val"]["acc"]
    assert torch.allclose(monitor.last["gap_acc"], gap)
    assert monitor.summary("val")["gap_acc_few"] == pytest.approx(gap[2].item())  # class 2 has 4 images
    assert monitor.summary("test") == {} and "gap_acc_few" not in model.evaluations["val"].metrics  # published, not written into the module


def test_diagnostics_reach_tensorboard_through_the_cli(tmp_path, monkeypatch):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.chdir(ROOT)
    cfg = yaml.safe_load((ROOT / "configs" / "digits_lt_erm.yaml").read_text())
    cfg["trainer"].update(max_epochs=2, default_root_dir=str(tmp_path), enable_progress_bar=False)
    cfg["trainer"]["callbacks"] = [
        {"class_path": "OverfittingMonitor", "init_args": {"max_per_class": 20}},
        {"class_path": "MarginStatistics"},
    ]
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    cli = build_cli(["fit", "--config", str(tmp_path / "cfg.yaml")])
    log_dir = Path(cli.trainer.log_dir)
    events = EventAccumulator(str(log_dir)).Reload()
    assert {"overfit/gap_acc", "overfit/gap_acc_few", "overfit/gap_acc/class_9"} <= set(events.Tags()["scalars"])
    assert "overfit/gap_vs_frequency" in events.Tags()["images"] and "margin/per_class" in events.Tags()["images"]
    assert (log_dir / "figures" / "overfit_gap.png").is_file() and (log_dir / "figures" / "margins_test.png").is_file()
    assert "train - val accuracy gap, few-shot" in (log_dir / "results_val.md").read_text()
