"""Calibration when fit ends and deployment to another class mix, through the commands: the
calibrator is the one the held-out comparison picks on the validation split, and lives in the
checkpoints' weights; a run validated on the test set is not calibrated; ``test --prior``,
``predict --prior`` and ``export --prior`` agree, for last.ckpt and a top-k checkpoint alike."""

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lt_imbalance.calibration import LEGACY_CALIBRATION_KEY, choose_calibrator
from lt_imbalance.cli import main
from lt_imbalance.inference.trained_model import load_trained
from lt_imbalance.label_shift import adapt_to_prior
from lt_imbalance.metrics import reweighted_metrics

ROOT = Path(__file__).resolve().parents[2]
BACKWARD = {"0": 1, "1": 1, "2": 1, "3": 2, "4": 2, "5": 3, "6": 4, "7": 6, "8": 8, "9": 12}


def _training_data(**kwargs):
    """The data module of the ``digits_checkpoint`` run (configs/digits_lt_erm.yaml)."""
    from lt_imbalance.data import DigitsLT

    data = DigitsLT(imbalance_ratio=10, val_fraction=0.2, batch_size=64, **kwargs)
    data.setup("fit")
    return data


def _fit_one_epoch(root: Path, *overrides: str) -> None:
    """``lt-imbalance fit`` of the digits ERM config for one epoch into ``root``, with ``overrides``."""
    config = ["--config", str(ROOT / "configs/digits_lt_erm.yaml"), "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(root)]
    main(["fit", *config, "--trainer.enable_progress_bar", "false", *overrides])


def _rows(path: Path) -> list[dict]:
    return list(csv.DictReader(open(path)))


def _full_probabilities(rows: list[dict]) -> np.ndarray:
    """The [N, 10] probabilities of a predictions CSV written with --top_k 10."""
    out = np.zeros((len(rows), 10))
    for i, row in enumerate(rows):
        for k in range(1, 11):
            out[i, int(row[f"top{k}_class"])] = float(row[f"top{k}_probability"])
    return out


def _test_images(folder: Path) -> tuple[list[Path], torch.Tensor]:
    """The test set's images as PNG files (lossless), and their labels."""
    data = _training_data()
    folder.mkdir()
    paths, labels = [], []
    for batch_x, batch_y in data.test_dataloader():
        for image, label in zip(batch_x, batch_y):
            paths.append(folder / f"{len(paths):03d}.png")
            Image.fromarray(image[0].numpy()).save(paths[-1])
            labels.append(int(label))
    return paths, torch.tensor(labels)


def test_fit_calibrates_on_the_validation_split_and_keeps_it_with_the_weights(digits_checkpoint):
    stored = torch.load(digits_checkpoint, map_location="cpu", weights_only=True)
    assert {"loops", "optimizer_states", "state_dict", "callbacks"} <= set(stored)  # still a resumable checkpoint
    run = digits_checkpoint.parents[1]
    record = json.loads((run / "calibration.json").read_text())
    assert float(stored["state_dict"]["outputs.temperature"]) == pytest.approx(record["temperature"])
    model, _ = load_trained(digits_checkpoint)
    data = _training_data()
    with torch.no_grad():
        logits = torch.cat([model(data.on_after_batch_transfer(b, 0)[0]) for b in data.val_dataloader()]).double()
    targets = torch.cat([y for _, y in data.val_dataloader()])
    counts = torch.tensor(data.class_counts, dtype=torch.float64)
    mix = torch.bincount(targets, minlength=10).double() / len(targets)
    offset = torch.log(mix) - torch.log(counts / counts.sum())  # scored under the validation split's own mix
    choice = choose_calibrator(logits, targets, offset)
    assert record["calibrator"] == choice.kind and record["held_out"] == pytest.approx(choice.held_out, rel=1e-6)
    assert record["temperature"] == pytest.approx(choice.temperature, rel=1e-5)
    calibrated = logits / choice.temperature + choice.bias
    assert record["after"]["nll"] == pytest.approx(torch.nn.functional.cross_entropy(calibrated + offset, targets).item(), rel=1e-5)
    assert record["before"]["nll"] == pytest.approx(torch.nn.functional.cross_entropy(logits + offset, targets).item(), rel=1e-5)
    assert list(record["model_prior"].values()) == pytest.approx((counts / counts.sum()).tolist(), abs=1e-6)  # ERM: the training prior
    assert "exact from the recipe" in record["prior_source"]
    table = (run / "results_val.md").read_text()
    if record["calibrated"]:
        assert record["fitted_on"] == f"held-out training split, {len(targets)} samples"
        assert "| ECE (15 bins), before calibration |" in table and "| NLL | " in table and "nats" in table
        assert "| ECE (15 bins), before calibration |" in (run / "results_test.md").read_text()  # the test after fit: calibrated


def test_a_top_k_checkpoint_carries_the_outputs_and_deploys_to_a_prior(digits_checkpoint, tmp_path):
    """The run's other checkpoint (Lightning's top-k file, saved at the final step) has the same
    outputs as last.ckpt; test and predict take it with --prior uniform."""
    top_k = next(p for p in digits_checkpoint.parent.glob("*.ckpt") if p.name != "last.ckpt")
    last_model, _ = load_trained(digits_checkpoint)
    model, _ = load_trained(top_k)
    assert model.outputs.record == last_model.outputs.record and torch.equal(model.outputs.bias, last_model.outputs.bias)
    paths, labels = _test_images(tmp_path / "images")
    main(["predict", "--ckpt_path", str(top_k), "--input", str(tmp_path / "images"), "--output", str(tmp_path / "u.csv"), "--top_k", "10"]
         + ["--prior", "uniform"])  # fmt: skip
    main(["predict", "--ckpt_path", str(top_k), "--input", str(tmp_path / "images"), "--output", str(tmp_path / "p.csv"), "--top_k", "10"])
    plain, uniform = _full_probabilities(_rows(tmp_path / "p.csv")), _full_probabilities(_rows(tmp_path / "u.csv"))
    expected = adapt_to_prior(torch.from_numpy(plain), model.outputs.prior(), torch.full((10,), 0.1)).numpy()
    np.testing.assert_allclose(uniform, expected, atol=2e-5)
    run = tmp_path / "test_run"
    main(["test", "--config", str(ROOT / "configs/digits_lt_erm.yaml"), "--ckpt_path", str(top_k), "--prior", "uniform"]
         + ["--trainer.default_root_dir", str(run), "--trainer.enable_progress_bar", "false"])  # fmt: skip
    reported = json.loads(next(run.rglob("results_test_prior.json")).read_text())
    assert reported["target_prior"] == pytest.approx([0.1] * 10)


def test_a_run_validated_on_the_test_set_is_not_calibrated(tmp_path, capfd, caplog):
    _fit_one_epoch(tmp_path, "--data.init_args.val_fraction", "0", "--test_after_fit", "false")
    captured = capfd.readouterr()
    said = captured.out + captured.err + caplog.text  # Lightning's info lines go to its logger
    assert "calibration: not calibrated, because the validation split is the test set" in said
    record = json.loads(next(tmp_path.rglob("calibration.json")).read_text())
    assert record["temperature"] == 1.0 and record["fitted_on"] is None and len(record["model_prior"]) == 10


def test_test_predict_and_export_agree_under_a_target_prior(digits_checkpoint, tmp_path):
    prior_file = tmp_path / "backward.csv"
    prior_file.write_text("class,share\n" + "".join(f"{k},{v}\n" for k, v in BACKWARD.items()))
    paths, labels = _test_images(tmp_path / "images")
    main(["predict", "--ckpt_path", str(digits_checkpoint), "--input", str(tmp_path / "images"), "--output", str(tmp_path / "plain.csv")]
         + ["--top_k", "10"])  # fmt: skip
    main(["predict", "--ckpt_path", str(digits_checkpoint), "--input", str(tmp_path / "images"), "--output", str(tmp_path / "q.csv")]
         + ["--top_k", "10", "--prior", str(prior_file)])  # fmt: skip
    plain, adapted = _full_probabilities(_rows(tmp_path / "plain.csv")), _full_probabilities(_rows(tmp_path / "q.csv"))
    model, _ = load_trained(digits_checkpoint)
    q = torch.tensor([BACKWARD[str(c)] for c in range(10)], dtype=torch.float64)
    q = q / q.sum()
    expected = adapt_to_prior(torch.from_numpy(plain), model.outputs.prior(), q).numpy()
    np.testing.assert_allclose(adapted, expected, atol=2e-5)  # the CSV's 6 decimals

    # test --prior: the adapted model's confusion matrix on the same images, re-weighted to q
    run = tmp_path / "test_run"
    main(["test", "--config", str(ROOT / "configs/digits_lt_erm.yaml"), "--ckpt_path", str(digits_checkpoint)]
         + ["--prior", str(prior_file), "--trainer.default_root_dir", str(run), "--trainer.enable_progress_bar", "false"])  # fmt: skip
    reported = json.loads(next(run.rglob("results_test_prior.json")).read_text())
    order = {str(p): i for i, p in enumerate(paths)}
    predicted = torch.tensor([int(r["prediction"]) for r in sorted(_rows(tmp_path / "q.csv"), key=lambda r: order[r["input"]])])
    confusion = torch.zeros(10, 10).index_put_((labels, predicted), torch.ones(len(labels)), accumulate=True)
    assert reported["adapted to the prior"] == pytest.approx(reweighted_metrics(confusion, q), abs=1e-6)  # q travels as float32
    assert reported["target_prior"] == pytest.approx(q.tolist())
    assert "| top-1 accuracy |" in next(run.rglob("results_test_prior.md")).read_text()
    # and test judges the model as predict deploys it: the test NLL from predict --prior's CSV equals the reported one
    adapted_by_input = {r["input"]: r for r in _rows(tmp_path / "q.csv")}
    probabilities = _full_probabilities([adapted_by_input[str(p)] for p in paths])
    nll = -np.log(np.clip(probabilities[np.arange(len(paths)), labels.numpy()], 1e-12, None)).mean()
    assert json.loads(next(run.rglob("results_test.json")).read_text())["metrics"]["nll"] == pytest.approx(nll, abs=2e-4)

    # export --prior: the same probabilities inside the ONNX graph
    import onnxruntime

    main(["export", "--ckpt_path", str(digits_checkpoint), "--out", str(tmp_path / "m.onnx"), "--prior", str(prior_file)])
    description = json.loads((tmp_path / "m.onnx.json").read_text())["output"]
    assert description["calibrated"] is model.outputs.calibrated and description["prior"]["assumed"].startswith("target prior")
    assert description["prior"]["shares"]["9"] == pytest.approx(q[9].item(), abs=1e-6)
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    pixels = np.stack([np.asarray(Image.open(p), dtype=np.float32)[None] for p in paths[:64]])
    rows = {r["input"]: r for r in _rows(tmp_path / "q.csv")}
    np.testing.assert_allclose(session.run(None, {"images": pixels})[0], _full_probabilities([rows[str(p)] for p in paths[:64]]), atol=1e-4)


def test_predict_estimates_the_mix_of_its_inputs_or_says_they_are_too_few(digits_checkpoint, tmp_path, capfd):
    paths, _ = _test_images(tmp_path / "images")
    out = tmp_path / "p.csv"
    main(["predict", "--ckpt_path", str(digits_checkpoint), "--input", str(tmp_path / "images"), "--output", str(tmp_path / "plain.csv")]
         + ["--top_k", "10"])  # fmt: skip
    main(["predict", "--ckpt_path", str(digits_checkpoint), "--input", str(tmp_path / "images"), "--output", str(out), "--top_k", "10"]
         + ["--prior", "estimate"])  # fmt: skip
    said = capfd.readouterr().err
    assert f"class mix of the {len(paths)} inputs, estimated by EM" in said and "± " in said and f"all classes in {out}.prior.csv" in said
    estimate = _rows(Path(str(out) + ".prior.csv"))
    shares = torch.tensor([float(r["share"]) for r in estimate], dtype=torch.float64)
    assert [r["class"] for r in estimate] == [str(c) for c in range(10)] and shares.sum().item() == pytest.approx(1, abs=1e-5)
    model, _ = load_trained(digits_checkpoint)
    plain = torch.from_numpy(_full_probabilities(_rows(tmp_path / "plain.csv")))
    expected = adapt_to_prior(plain, model.outputs.prior(), shares).numpy()
    np.testing.assert_allclose(_full_probabilities(_rows(out)), expected, atol=1e-4)  # written under the estimate

    few = tmp_path / "few"
    few.mkdir()
    for p in paths[:15]:  # 15 inputs, 10 classes: fewer than 2 per class
        shutil.copy(p, few / p.name)
    main(
        [
            "predict",
            "--ckpt_path",
            str(digits_checkpoint),
            "--input",
            str(few),
            "--output",
            str(tmp_path / "few.csv"),
            "--prior",
            "estimate",
        ]
    )
    assert "15 inputs are too few to estimate their class mix (at least 20: 2 per class)" in capfd.readouterr().err
    assert not Path(str(tmp_path / "few.csv") + ".prior.csv").exists()
    plain_rows = {r["input"].split("/")[-1]: r["prediction"] for r in _rows(tmp_path / "plain.csv")}
    assert all(plain_rows[r["input"].split("/")[-1]] == r["prediction"] for r in _rows(tmp_path / "few.csv"))  # the model's own prior


def test_prior_mistakes_are_named(digits_checkpoint, tmp_path, capsys):
    old = tmp_path / "old.ckpt"
    stored = torch.load(digits_checkpoint, map_location="cpu", weights_only=True)
    for key in [k for k in stored["state_dict"] if k.startswith("outputs.")]:
        del stored["state_dict"][key]
    torch.save(stored, old)  # as a checkpoint of a version before calibration was recorded
    cases = [
        (
            ["predict", "--config", str(ROOT / "configs/digits_lt_erm.yaml"), "--ckpt_path", str(digits_checkpoint)],
            "predict takes no --config: it reads everything from the checkpoint. Run `lt-imbalance predict --ckpt_path",
        ),
        (["predict", "--ckpt_path", str(old), "--input", "x", "--prior", "uniform"], "records no class prior"),
        (
            ["export", "--ckpt_path", str(digits_checkpoint), "--out", str(tmp_path / "m.pt"), "--prior", "estimate"],
            "no inputs to estimate",
        ),
        (
            ["test", "--config", str(ROOT / "configs/digits_lt_erm.yaml"), "--ckpt_path", str(digits_checkpoint), "--prior", "estimate"]
            + ["--trainer.default_root_dir", str(tmp_path / "r")],
            "estimate is for `lt-imbalance predict",
        ),  # fmt: skip
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit) as stop:
            main(argv)
        assert stop.value.code == 2 and message in capsys.readouterr().err


def test_a_checkpoint_of_the_previous_version_loads_with_its_calibration(digits_checkpoint, tmp_path):
    """Earlier versions kept T and p_model in a record beside the weights; they load as they were."""
    stored = torch.load(digits_checkpoint, map_location="cpu", weights_only=True)
    for key in [k for k in stored["state_dict"] if k.startswith("outputs.")]:
        del stored["state_dict"][key]
    prior = [0.3, 0.2, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.03, 0.02]
    stored[LEGACY_CALIBRATION_KEY] = {"temperature": 0.8, "model_prior": prior, "prior_source": "old", "fitted_on": "split, 96 samples"}
    old = tmp_path / "previous.ckpt"
    torch.save(stored, old)
    model, _ = load_trained(old)
    assert float(model.outputs.temperature) == pytest.approx(0.8) and model.outputs.prior().tolist() == pytest.approx(prior, abs=1e-7)
    assert model.outputs.calibrated and model.outputs.record.prior_source == "old"


def test_a_recipe_without_a_closed_form_prior_assumes_the_nearest_exact_one(tmp_path, capfd, caplog):
    _fit_one_epoch(tmp_path, "--model.init_args.loss", "focal", "--prior", "uniform")
    record = json.loads(next(tmp_path.rglob("calibration.json")).read_text())
    captured = capfd.readouterr()
    said = captured.out + captured.err + caplog.text
    held_out = ", ".join(f"{kind} {nll:.3f}" for kind, nll in record["held_out"].items())
    assert f"(held-out NLL: {held_out})" in said  # the line and the file: the same numbers
    if record["calibrated"]:
        assert f"NLL {record['before']['nll']:.3f} -> {record['after']['nll']:.3f}" in said
    assert record["prior_source"].startswith("approximate: n_c^1, as if without what has no closed form (the FocalLoss loss")
    assert sum(record["model_prior"].values()) == pytest.approx(1.0, abs=1e-5) and min(record["model_prior"].values()) > 0
    assert record["target"] == "uniform" and record["target_prior"] == pytest.approx({str(c): 0.1 for c in range(10)})
    reported = json.loads(next(tmp_path.rglob("results_test_prior.json")).read_text())  # fit --prior: the test after fit adapts
    assert reported["model_prior"] == pytest.approx(list(record["model_prior"].values()), abs=1e-6)
    assert reported["target_prior"] == pytest.approx([0.1] * 10)
