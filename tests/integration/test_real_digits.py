"""Real data: the default experiment (scikit-learn's digits, long-tailed with ratio 10, 30 epochs).

Bar: balanced test accuracy >= 0.85 and few-shot accuracy >= 0.5. Chance is 0.10; a model that
ignored the three few-shot classes (10-16 training images each) could reach at most 0.70. The
default run reaches about 0.95 on 2 CPU cores in under 30 s, so the bar leaves room for seed noise
while still failing if the tail is not learned.
"""

import json
from pathlib import Path

import pytest

from lt_imbalance.commands.lightning_cli import build_cli

pytestmark = pytest.mark.slow  # a whole-product scenario: `make test-slow`

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.long_running
def test_default_digits_lt_experiment_learns_the_tail(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    cli = build_cli(
        ["fit", "--config", "configs/digits_lt.yaml", "--trainer.default_root_dir", str(tmp_path), "--trainer.enable_progress_bar", "false"]
    )
    metrics = json.loads((Path(cli.trainer.log_dir) / "results_test.json").read_text())["metrics"]
    assert metrics["balanced_acc"] >= 0.85, metrics
    assert metrics["few_acc"] >= 0.5, metrics
