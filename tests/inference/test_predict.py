"""``lt-imbalance predict`` from a checkpoint alone: images (with a corrupt file and mixed channel
counts) and a table; rows, class names, probabilities equal to the model's own softmax."""

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lt_imbalance.cli import main
from lt_imbalance.data.datasets import ImageFileDataset
from lt_imbalance.inference.predict import predict
from lt_imbalance.inference.trained_model import load_trained


def _images(folder: Path) -> list[Path]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    folder.mkdir(parents=True)
    paths = []
    for i in range(12):
        path = folder / f"digit_{i:02d}.png"
        Image.fromarray(np.uint8(digits.images[i] * 255 / 16)).save(path)
        paths.append(path)
    rgb = folder / "sub" / "colour.png"  # an RGB image, larger, in a sub-folder: converted and resized
    rgb.parent.mkdir()
    Image.fromarray(np.stack([np.uint8(digits.images[12] * 255 / 16)] * 3, -1)).resize((16, 16)).save(rgb)
    (folder / "broken.png").write_bytes(b"not an image")
    return sorted([*paths, rgb])


def _training_data():
    """The data module of the ``digits_checkpoint`` run (same config, same split, same statistics)."""
    from lt_imbalance.data import DigitsLT

    data = DigitsLT(imbalance_ratio=10, val_fraction=0.2, batch_size=64)
    data.setup("fit")
    return data


def test_predict_gives_the_modules_own_outputs_on_the_data_modules_test_images(digits_checkpoint, tmp_path):
    data = _training_data()
    x, y = next(iter(data.test_dataloader()))
    folder = tmp_path / "test_images"
    folder.mkdir()
    for i, image in enumerate(x):
        Image.fromarray(image[0].numpy()).save(folder / f"{i:03d}.png")  # lossless: the same uint8 pixels
    predict(str(digits_checkpoint), str(folder), str(tmp_path / "p.csv"), top_k=1)
    rows = list(csv.DictReader(open(tmp_path / "p.csv")))
    model, _ = load_trained(digits_checkpoint)
    with torch.no_grad():
        expected = model.outputs.evaluated(model(data.on_after_batch_transfer((x, y), 0)[0])).softmax(1)
    assert len(rows) == len(x)
    np.testing.assert_allclose([float(r["probability"]) for r in rows], expected.max(1).values.numpy(), atol=1e-6)
    assert [r["prediction"] for r in rows] == [str(int(c)) for c in expected.argmax(1)]


def test_predict_a_folder_of_images(digits_checkpoint, tmp_path):
    images = _images(tmp_path / "images")
    result = predict(str(digits_checkpoint), str(tmp_path / "images"), str(tmp_path / "out" / "predictions.csv"), top_k=3)
    assert result["written"] == 13 and [Path(p).name for p in result["skipped"]] == ["broken.png"]
    rows = list(csv.DictReader(open(tmp_path / "out" / "predictions.csv")))
    assert [Path(r["input"]) for r in rows] == sorted(images) and len(rows[0]) == 3 + 2 * 3
    model, spec = load_trained(digits_checkpoint)
    assert list(spec.class_names) == [str(d) for d in range(10)] and spec.images
    files = ImageFileDataset(sorted(images), torch.zeros(13), 8, 1)
    x = torch.stack([files.load(i) for i in range(13)])
    data = _training_data()  # the data module of the checkpoint's run turns them into model inputs
    with torch.no_grad():
        expected = model.outputs.evaluated(model(data.on_after_batch_transfer((x, torch.zeros(13)), 0)[0])).softmax(1)
    for row, p in zip(rows, expected):
        assert row["prediction"] == row["top1_class"] == str(int(p.argmax()))
        assert float(row["probability"]) == pytest.approx(p.max().item(), abs=1e-5)
        assert float(row["top2_probability"]) == pytest.approx(p.sort(descending=True).values[1].item(), abs=1e-5)
    assert sum(float(rows[0][f"top{k}_probability"]) for k in (1, 2, 3)) <= 1 + 1e-6
    assert expected.sum(1).allclose(torch.ones(13))


def test_a_list_file_strict_mode_and_bad_inputs(digits_checkpoint, tmp_path, capsys):
    images = _images(tmp_path / "images")
    listing = tmp_path / "images" / "list.txt"
    listing.write_text("\n".join(p.relative_to(listing.parent).as_posix() for p in images[:3]) + "\n\n# a comment\n")
    result = predict(str(digits_checkpoint), str(listing), str(tmp_path / "list.csv"))
    assert result["written"] == 3 and not result["skipped"]
    with pytest.raises(OSError, match="broken.png"):
        predict(str(digits_checkpoint), str(tmp_path / "images"), str(tmp_path / "strict.csv"), strict=True)
    (tmp_path / "not.ckpt").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="cannot be read as a checkpoint .*it may be truncated"):
        load_trained(tmp_path / "not.ckpt")
    listing.write_text("images/" + images[0].name + "\n")  # relative to the working folder, not the list's
    with pytest.raises(FileNotFoundError, match="1 of the 1 images listed in .* are not there.*read from the list's own folder"):
        predict(str(digits_checkpoint), str(listing), str(tmp_path / "moved.csv"))
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.ckpt")
    with pytest.raises(ValueError, match="not a Lightning checkpoint of an lt_imbalance model"):
        load_trained(tmp_path / "other.ckpt")
    with pytest.raises(SystemExit):
        main(["predict", "--ckpt_path", str(digits_checkpoint), "--input", str(tmp_path / "missing")])
    assert "input '" in capsys.readouterr().err


def test_predict_a_table(tmp_path_factory, tmp_path, train_checkpoint):
    import pandas as pd
    from palmerpenguins import load_penguins

    checkpoint = train_checkpoint(tmp_path_factory, "configs/tabular/erm.yaml")
    frame = load_penguins().drop(columns=["species"]).head(25)
    frame.to_csv(tmp_path / "penguins.csv", index=False)
    result = predict(str(checkpoint), str(tmp_path / "penguins.csv"), str(tmp_path / "p.csv"), top_k=2)
    rows = list(csv.DictReader(open(tmp_path / "p.csv")))
    assert result["written"] == 25 and {r["prediction"] for r in rows} <= {"Adelie", "Chinstrap", "Gentoo"}
    assert rows[3]["input"] == "penguins.csv:3"
    frame.drop(columns=["island"]).to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(ValueError, match=r"lacks the columns \['island'\]"):
        predict(str(checkpoint), str(tmp_path / "short.csv"), str(tmp_path / "q.csv"))
    assert isinstance(pd.read_csv(tmp_path / "p.csv"), pd.DataFrame)


def test_predict_writes_nothing_but_its_csv(digits_checkpoint, tmp_path, monkeypatch):
    _images(tmp_path / "images")
    monkeypatch.chdir(tmp_path)
    predict(str(digits_checkpoint), "images", "out.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images", "out.csv"]  # no run folder, no checkpoint


def test_checkpoints_of_the_previous_version_still_load(digits_checkpoint, tmp_path):
    """Earlier checkpoints hold the input description as a plain dict; it reads as the same InputSpec."""
    from lt_imbalance.inputs import InputSpec
    from lt_imbalance.module import INPUTS_KEY

    checkpoint = torch.load(digits_checkpoint, weights_only=True)
    spec = checkpoint[INPUTS_KEY]
    assert isinstance(spec, InputSpec)  # written by this version, loaded with weights_only=True
    old = {k: v for k, v in spec.as_dict().items() if k not in ("preprocessing", "resize_size")}  # the old dict's keys
    torch.save({**checkpoint, INPUTS_KEY: old}, tmp_path / "old.ckpt")
    _, read = load_trained(tmp_path / "old.ckpt")
    assert read == spec


def test_predict_fails_when_nothing_could_be_predicted_and_keeps_an_existing_csv(digits_checkpoint, tmp_path, capsys):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"not an image")
    out = tmp_path / "p.csv"
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", "--ckpt_path", str(digits_checkpoint), "--input", str(folder), "--output", str(out)])
    assert exit_info.value.code == 1 and "nothing could be predicted" in capsys.readouterr().err
    out.write_text("mine\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", "--ckpt_path", str(digits_checkpoint), "--input", str(folder), "--output", str(out)])
    assert exit_info.value.code == 2 and out.read_text() == "mine\n" and "pass --overwrite" in capsys.readouterr().err
