"""Real tabular data: the bundled Palmer penguins table (configs/tabular/erm.yaml), long-tailed with
ratio 10 (51 / 16 / 5 rows, of which 46 / 15 / 5 train after the 10% validation carve-out). Bar: balanced test accuracy >= 0.8 (chance: 0.33; a model
that never predicted the 5-row tail class could reach at most 0.67)."""

import json
from pathlib import Path

import pytest

from lt_imbalance.commands.lightning_cli import build_cli

pytestmark = pytest.mark.slow  # a whole-product scenario: `make test-slow`

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.long_running
def test_penguins_mlp_learns_well_above_chance(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    cli = build_cli(
        [
            "fit",
            "--config",
            "configs/tabular/erm.yaml",
            "--trainer.default_root_dir",
            str(tmp_path),
            "--trainer.enable_progress_bar",
            "false",
        ]
    )
    assert cli.datamodule.class_counts == [46, 15, 5]
    metrics = json.loads((Path(cli.trainer.log_dir) / "results_test.json").read_text())["metrics"]
    assert metrics["balanced_acc"] >= 0.8, metrics
    assert metrics["auroc"] >= 0.9, metrics
