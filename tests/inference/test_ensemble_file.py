"""An ensemble file from two trained digits models: its probabilities are the weighted average of
the members' re-weighted probabilities (by hand), ``--prior`` re-weights that average, and
``test``, ``predict`` and ``export`` take it like a checkpoint (ONNX equals ``predict`` within 1e-4)."""

import csv
import json

import numpy as np
import pytest
import torch

from lt_imbalance.cli import main
from lt_imbalance.ensemble_classifier import EnsembleClassifier, save_ensemble
from lt_imbalance.errors import BadValue
from lt_imbalance.inference.ensemble_builder import build_ensemble
from lt_imbalance.inference.trained_model import load_trained

WEIGHTS = (0.75, 0.25)


@pytest.fixture(scope="module")
def members(digits_checkpoint, digits_balanced_softmax_checkpoint):
    return [digits_checkpoint, digits_balanced_softmax_checkpoint]


@pytest.fixture(scope="module")
def ensemble_file(members, tmp_path_factory):
    path = tmp_path_factory.mktemp("ensemble") / "ensemble.ckpt"
    save_ensemble(build_ensemble(list(zip(members, WEIGHTS)), "uniform"), path, members)
    return path


def _by_hand(members, x: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """sum_k w_k softmax(z'_k + log q - log p_model,k), z'_k member k's calibrated logits."""
    total = torch.zeros(len(x), 10, dtype=torch.float64)
    for path, w in zip(members, WEIGHTS):
        model, _ = load_trained(path)
        with torch.no_grad():
            z = model.outputs.evaluated(model(x)).double()
        total += w * (z + prior.log() - model.outputs.prior().log()).softmax(1)
    return total


def _network_inputs(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed))


def test_the_ensemble_averages_the_members_re_weighted_probabilities(members, ensemble_file):
    model, spec = load_trained(ensemble_file)
    assert isinstance(model, EnsembleClassifier) and spec.class_names == tuple(str(d) for d in range(10))
    x, uniform = _network_inputs(6), torch.full((10,), 0.1, dtype=torch.float64)
    expected = _by_hand(members, x, uniform)
    with torch.no_grad():
        np.testing.assert_allclose(model.outputs(model(x)).numpy(), expected.numpy(), atol=1e-6)
        # another target prior r re-weights the average: p r / q, normalised
        train = torch.tensor(spec.class_counts, dtype=torch.float64) / sum(spec.class_counts)
        from lt_imbalance.label_shift import TargetPrior

        model.outputs.set_target(TargetPrior("train", train))
        shifted = expected * train / uniform
        np.testing.assert_allclose(model.outputs(model(x)).numpy(), (shifted / shifted.sum(1, keepdim=True)).numpy(), atol=1e-6)
    assert model.outputs.describe()["target"] == "train" and not model.outputs.calibrated


def test_test_predict_and_export_take_the_file(members, ensemble_file, tmp_path, capsys):
    import onnxruntime
    from PIL import Image

    from lt_imbalance.data import DigitsLT

    # test: the balanced accuracy equals the one of the averaged probabilities on the config's test set
    main(
        [
            "test",
            "--config",
            "configs/digits_lt_erm.yaml",
            "--ckpt_path",
            str(ensemble_file),
            "--trainer.default_root_dir",
            str(tmp_path / "t"),
        ]
    )
    result = json.loads(next((tmp_path / "t").rglob("results_test.json")).read_text())
    data = DigitsLT(imbalance_ratio=10, val_fraction=0.2, batch_size=64, test_per_class=50)
    data.setup("test")
    x, y = zip(*[data.on_after_batch_transfer(batch, 0)[:2] for batch in data.test_dataloader()])
    predicted = _by_hand(members, torch.cat(x), torch.full((10,), 0.1, dtype=torch.float64)).argmax(1)
    y = torch.cat(y)
    recall = [(predicted[y == c] == c).double().mean().item() for c in range(10)]
    assert result["metrics"]["balanced_acc"] == pytest.approx(float(np.mean(recall)), abs=1e-6)

    # predict (and --prior) and export: the ONNX graph's probabilities equal predict's CSV
    images = tmp_path / "images"
    images.mkdir()
    raw = torch.randint(0, 256, (5, 1, 8, 8), generator=torch.Generator().manual_seed(3)).to(torch.uint8)
    for i, image in enumerate(raw):
        Image.fromarray(image[0].numpy()).save(images / f"{i}.png")
    for prior in ("uniform", "train"):
        capsys.readouterr()
        out = tmp_path / f"predictions_{prior}.csv"
        main(["predict", "--ckpt_path", str(ensemble_file), "--input", str(images), "--output", str(out), "--prior", prior])
        assert "an ensemble of 2 models (weights 0.75, 0.25)" in capsys.readouterr().err
        onnx = tmp_path / f"ensemble_{prior}.onnx"
        main(["export", "--ckpt_path", str(ensemble_file), "--out", str(onnx), "--prior", prior])
        assert json.loads(onnx.with_name(onnx.name + ".json").read_text())["output"]["ensemble"] == {"members": 2, "weights": list(WEIGHTS)}
        exported = onnxruntime.InferenceSession(str(onnx), providers=["CPUExecutionProvider"]).run(None, {"images": raw.float().numpy()})[0]
        rows = list(csv.DictReader(out.open()))
        for i, row in enumerate(sorted(rows, key=lambda r: r["input"])):
            assert row["prediction"] == str(int(exported[i].argmax()))
            assert float(row["top1_probability"]) == pytest.approx(float(exported[i].max()), abs=1e-4)


def test_members_of_other_data_or_an_ensemble_as_a_member_are_refused(members, ensemble_file, train_checkpoint, tmp_path_factory):
    with pytest.raises(BadValue, match="is an ensemble already"):
        build_ensemble([(members[0], 1.0), (ensemble_file, 1.0)], "uniform")
    table = train_checkpoint(tmp_path_factory, "configs/tabular/erm.yaml")
    with pytest.raises(BadValue, match="must be trained on the same data"):
        build_ensemble([(members[0], 1.0), (table, 1.0)], "uniform")
    with pytest.raises(BadValue, match="give train, uniform"):
        build_ensemble([(members[0], 1.0)], "uniforn")
