"""A tiny cross-fitted study end to end (digits, ``--folds 3``, 1 epoch of 2 batches per fit): the
out-of-fold outputs cover every training image and are recomputed here by hand from the fold
checkpoints, no fold model saw its own held-out images, the winner and the ensemble are chosen on
them, the bag is one file that ``test``, ``predict --prior uniform`` and ``export`` take (ONNX =
predict within 1e-4), and the retrain of the seed the trials ran with reuses their checkpoints."""

import csv
import json
from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml

from lt_imbalance.callbacks.diagnostic_pass import evaluate
from lt_imbalance.cli import main
from lt_imbalance.commands.lightning_cli import instantiate_data
from lt_imbalance.inference.trained_model import load_trained
from lt_imbalance.rundir import newest_last_checkpoint
from lt_imbalance.tuning.settings import parse_args
from lt_imbalance.tuning.study import Tuner

ROOT = Path(__file__).resolve().parents[2]
SPACE = {"model.init_args.optimizer.init_args.lr": {"float": [0.01, 0.1], "log": True}}


def _deployed_by_hand(model, logits) -> np.ndarray:
    """softmax(z / T + b + log q - log p_model): the calibrated outputs re-weighted to the target prior (ERM: no post-hoc shift)."""
    outputs = model.outputs
    z = logits.double().numpy() / float(outputs.temperature) + outputs.bias.double().numpy()
    z = z + np.log(outputs.target_prior.double().numpy()) - np.log(outputs.model_prior.double().numpy())
    p = np.exp(z - z.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True)


@pytest.mark.slow
@pytest.mark.long_running
def test_a_cross_fitted_study_judges_out_of_fold_and_deploys_a_bag(tmp_path, monkeypatch, capsys):
    import onnxruntime
    from PIL import Image

    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(SPACE))
    out = tmp_path / "study"
    args = ["--config", "configs/digits_lt_erm.yaml", "--space", str(space), "--n_trials", "2", "--out", str(out), "--folds", "3",
            "--seeds", "0", "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2"]  # fmt: skip
    report = Tuner(parse_args(args)).run()
    assert "cross-fitting on, 3 folds (--folds)" in capsys.readouterr().out

    # the out-of-fold outputs cover every image the base config's split trains and validates on, each once
    base = instantiate_data(yaml.safe_load((out / "base.yaml").read_text()))
    images = np.sort(np.concatenate([base.train_indices, base.val_indices]))
    study = optuna.load_study(study_name="lt-imbalance", storage=f"sqlite:///{out / 'study.db'}")
    for trial in study.get_trials():
        folder = out / "trials" / f"{trial.number:04d}"
        outputs = np.load(folder / "val_outputs.npz")
        np.testing.assert_array_equal(outputs["indices"], images)
        np.testing.assert_array_equal(outputs["targets"], base.announced_labels[images])
        for k in range(3):  # each fold model: trained on the other folds, its held-out rows recomputed from its checkpoint
            config = yaml.safe_load((folder / f"fold{k}" / "config.yaml").read_text())
            data = instantiate_data(config)
            assert not set(data.train_indices) & set(data.val_indices)
            model, _ = load_trained(newest_last_checkpoint(folder / f"fold{k}" / "run"))
            assert model.outputs.calibrated
            data.setup("fit")
            logits, targets = evaluate(model, data, data.val_dataloader())
            rows = np.searchsorted(images, data.val_indices)
            np.testing.assert_array_equal(outputs["targets"][rows], targets.numpy())
            np.testing.assert_allclose(outputs["deployed"][rows], _deployed_by_hand(model, logits), atol=1e-5)
        predicted = outputs["deployed"].argmax(1)
        y = outputs["targets"]
        assert trial.value == pytest.approx(np.mean([(predicted[y == c] == c).mean() for c in np.unique(y)]), abs=1e-9)

    # the winner and the ensemble are chosen on them; the answer is the winner's bag
    text = report.read_text()
    assert "on the out-of-fold outputs of 3-fold cross-fitting" in text and "## Selection" in text
    assert json.loads((out / "ensemble.json").read_text())["single_best"]["trial"] == study.best_trial.number
    assert "greedy selection with replacement over 2 complete trials" in text
    assert "## The deployed answer" in text and "bag of 3 fold models (bag.ckpt)" in text
    bag = out / "bag.ckpt"
    model, _ = load_trained(bag)
    assert len(model.net.networks) == 3 and model.net.weights.tolist() == pytest.approx([1 / 3] * 3)

    # seed 0 is the trials' seed: the retrains reuse their fold checkpoints (no fold fit of seed 0), tested as bags
    assert "trained once, not again" in text
    assert not list((out / "retrain").glob("*/fold*/seed0"))
    assert "## The answers on the test set" in text and "Every answer is its config's bag of 3 fold models" in text

    # test, predict --prior uniform and export take the bag; ONNX = predict within 1e-4
    main(["test", "--config", str(out / "base.yaml"), "--ckpt_path", str(bag), "--trainer.default_root_dir", str(tmp_path / "t")])
    assert 0 <= json.loads(next((tmp_path / "t").rglob("results_test.json")).read_text())["metrics"]["balanced_acc"] <= 1
    inputs = tmp_path / "images"
    inputs.mkdir()
    raw = np.random.default_rng(3).integers(0, 256, (4, 8, 8), dtype=np.uint8)
    for i, image in enumerate(raw):
        Image.fromarray(image).save(inputs / f"{i}.png")
    predictions = tmp_path / "p.csv"
    main(["predict", "--ckpt_path", str(bag), "--input", str(inputs), "--output", str(predictions), "--prior", "uniform"])
    onnx = tmp_path / "bag.onnx"
    main(["export", "--ckpt_path", str(bag), "--out", str(onnx), "--prior", "uniform"])
    exported = onnxruntime.InferenceSession(str(onnx), providers=["CPUExecutionProvider"]).run(
        None, {"images": raw[:, None].astype(np.float32)}
    )[0]
    rows = sorted(csv.DictReader(predictions.open()), key=lambda r: r["input"])
    for i, row in enumerate(rows):
        assert row["prediction"] == str(int(exported[i].argmax()))
        assert float(row["top1_probability"]) == pytest.approx(float(exported[i].max()), abs=1e-4)
