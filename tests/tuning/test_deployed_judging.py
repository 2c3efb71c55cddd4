"""A trial is judged as it will be deployed: its value is the monitor of its final weights' validation
outputs, calibrated and re-weighted to the study's target prior, recomputed here by hand from the
trial's checkpoint (temperature, biases, p_model, q read from it)."""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from lt_imbalance.callbacks.diagnostic_pass import evaluate
from lt_imbalance.commands.lightning_cli import instantiate_data
from lt_imbalance.inference.trained_model import load_trained
from lt_imbalance.tuning.settings import deploy_prior, parse_args
from lt_imbalance.tuning.study import Tuner

ROOT = Path(__file__).resolve().parents[2]
QUICK = ["--trainer.max_epochs", "2", "--trainer.limit_train_batches", "3", "--folds", "0"]


def test_the_monitor_decides_the_prior_trials_are_judged_for():
    split = {"data": {"init_args": {"val_fraction": 0.2}}}
    pool = {"data": {"init_args": {"val_source": "pool", "val_fraction": 0.0}}}
    assert deploy_prior(None, split, "val/balanced_acc") == "uniform"
    assert deploy_prior(None, split, "val/acc") == "train"  # a stratified split has the training mix
    assert deploy_prior(None, pool, "val/acc") == "uniform"  # a balanced pool
    assert deploy_prior(None, {**split, "prior": "mix.csv"}, "val/acc") == "mix.csv"  # the config's own
    assert deploy_prior("uniform", {**split, "prior": "mix.csv"}, "val/acc") == "uniform"  # --target-prior wins


def test_a_trial_is_scored_on_its_calibrated_outputs_reweighted_to_the_target_prior(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({"model.init_args.optimizer.init_args.lr": {"float": [0.05, 0.1]}}))
    out = tmp_path / "study"
    args = ["--config", "configs/digits_lt_erm.yaml", "--space", str(space), "--n_trials", "1", "--out", str(out), "--seeds", *QUICK]
    Tuner(parse_args(args)).run()
    folder = out / "trials" / "0000"
    record = json.loads((folder / "objective.json").read_text())
    config = yaml.safe_load((folder / "config.yaml").read_text())
    assert config["prior"] == "uniform" and yaml.safe_load((out / "best.yaml").read_text())["prior"] == "uniform"

    model, _ = load_trained(next(folder.rglob("last.ckpt")))
    outputs = model.outputs
    assert outputs.calibrated and outputs.has_target
    data = instantiate_data(config)
    data.setup("fit")
    logits, targets = evaluate(model, data, data.val_dataloader())
    z = logits.double().numpy()
    t, b = float(outputs.temperature), outputs.bias.double().numpy()
    p_model, q = outputs.model_prior.double().numpy(), outputs.target_prior.double().numpy()
    calibrated = z / t + b  # ERM: no post-hoc shift
    adapted = calibrated + np.log(q) - np.log(p_model)
    probabilities = np.exp(adapted - adapted.max(1, keepdims=True))
    probabilities /= probabilities.sum(1, keepdims=True)
    y = targets.numpy()
    recalls = [(probabilities[y == c].argmax(1) == c).mean() for c in np.unique(y)]
    assert record["value"] == pytest.approx(float(np.mean(recalls)), abs=1e-9)
    as_trained = calibrated.argmax(1)  # under the model's own prior p_model, as the validation table's as-trained column
    assert (probabilities.argmax(1) != as_trained).any()  # the case tells deployed from as trained
    assert record["as_trained"] == pytest.approx(float(np.mean([(as_trained[y == c] == c).mean() for c in np.unique(y)])), abs=1e-9)
    saved = np.load(folder / "val_outputs.npz")
    np.testing.assert_array_equal(saved["targets"], y)
    np.testing.assert_allclose(saved["deployed"], probabilities, atol=1e-5)
    rows = (out / "trials.csv").read_text().splitlines()
    assert rows[0].split(",")[:5] == ["number", "recipe", "state", "value", "as_trained"]

    # predict of the trial's checkpoint deploys the same prior by default, and says so
    from lt_imbalance.cli import main

    images = tmp_path / "images"
    images.mkdir()
    x, _ = next(iter(data.test_dataloader()))
    for k in range(3):
        Image.fromarray(x[k, 0].numpy()).save(images / f"{k}.png")
    capsys.readouterr()
    main(["predict", "--ckpt_path", str(next(folder.rglob("last.ckpt"))), "--input", str(images), "--output", str(tmp_path / "p.csv")])
    assert "probabilities for the class prior 'uniform' the checkpoint deploys (--prior changes it)" in capsys.readouterr().err
