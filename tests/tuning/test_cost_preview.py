"""Before the portfolio runs, what each recipe costs: the batch timer on a tiny fit, and the
tuner's line from per-recipe timings (the fit processes stood in for)."""

import json
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from lt_imbalance.tuning import preflight, study
from lt_imbalance.tuning.batch_timer import WARM_UP_BATCHES, BatchTimer
from lt_imbalance.tuning.settings import parse_args

ROOT = Path(__file__).resolve().parents[2]


class Tiny(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(3, 2)

    def training_step(self, batch, batch_idx):
        return torch.nn.functional.cross_entropy(self.layer(batch[0]), batch[1])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_the_timer_counts_the_batches_after_the_warm_up_per_sample(tmp_path):
    data = DataLoader(TensorDataset(torch.randn(40, 3), torch.randint(0, 2, (40,))), batch_size=4)
    trainer = pl.Trainer(fast_dev_run=6, callbacks=[BatchTimer(str(tmp_path / "t.json"))], logger=False, enable_progress_bar=False)
    trainer.fit(Tiny(), data)
    timing = json.loads((tmp_path / "t.json").read_text())
    assert timing["batches"] == 6 - WARM_UP_BATCHES and 0 < timing["seconds_per_sample"] < 1


def test_the_tuner_says_what_each_recipe_costs_relative_to_the_base(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    tuner = study.Tuner(parse_args(["--config", "configs/digits_lt_erm.yaml", "--out", str(tmp_path / "s")]))
    recipes = list(tuner.space.portfolio)
    seconds = {name: 0.001 for name in recipes}
    seconds[recipes[3]] = 0.005  # five times the base
    failing = recipes[-1]

    def fake_fit(cmd, env, log):
        run = Path(cmd[cmd.index("--config") + 1]).parent
        if run.name == failing:
            return 1, "error"
        Path(next(a for a in cmd if a.startswith("--trainer.callbacks.out=")).split("=", 1)[1]).write_text(
            json.dumps({"seconds_per_sample": seconds[run.name], "batches": 4})
        )
        return 0, ""

    monkeypatch.setattr(preflight, "run_to_end", fake_fit)
    costs = preflight.cost_preview(tuner)
    assert costs[recipes[0]] == 1.0 and costs[recipes[3]] == 5.0 and failing not in costs
    said = capsys.readouterr().out
    assert (
        f"{recipes[3]} 5x" in said and f"not timed (their trials will say why): {failing}" in said and "delete it under portfolio:" in said
    )
    assert json.loads((tmp_path / "s" / "recipe_costs.json").read_text())["relative_to_base"] == costs
    assert not (tmp_path / "s" / "preflight").exists() or not any((tmp_path / "s" / "preflight").iterdir())
