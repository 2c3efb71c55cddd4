"""``lt-imbalance export``: ONNX run by onnxruntime equals the PyTorch model within 1e-4, any batch size;
TorchScript likewise; normalisation inside the graph."""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from lt_imbalance.cli import main
from lt_imbalance.inference.export import exportable
from lt_imbalance.inference.trained_model import load_trained


def _raw_images(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (n, 1, 8, 8), generator=torch.Generator().manual_seed(seed)).float()


def test_onnx_equals_pytorch(digits_checkpoint, tmp_path, capfd):
    import onnxruntime

    out = tmp_path / "model.onnx"
    main(["export", "--ckpt_path", str(digits_checkpoint), "--format", "onnx", "--out", str(out)])
    said = capfd.readouterr()
    assert "[torch.onnx]" not in said.out + said.err and said.err.startswith("export: ")  # one line, no exporter progress
    description = json.loads((tmp_path / "model.onnx.json").read_text())
    assert description["class_names"] == [str(d) for d in range(10)] and description["input"]["name"] == "images"
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    wrapper, spec, _ = exportable(digits_checkpoint)
    model, _ = load_trained(digits_checkpoint)
    from lt_imbalance.data import DigitsLT

    data = DigitsLT(imbalance_ratio=10, val_fraction=0.2, batch_size=64)  # the checkpoint run's data module
    data.setup("fit")
    for n in (1, 7, 33):  # dynamic batch
        x = _raw_images(n, seed=n)
        ours = session.run(None, {"images": x.numpy()})[0]
        with torch.no_grad():
            reference = wrapper(x).numpy()
            inputs = data.on_after_batch_transfer((x.to(torch.uint8), torch.zeros(n)), 0)[0]
            direct = model.outputs.evaluated(model(inputs)).softmax(1).numpy()
        np.testing.assert_allclose(ours, reference, atol=1e-4)
        np.testing.assert_allclose(reference, direct, atol=1e-5)  # the graph's normalisation is training's


def test_torchscript_equals_pytorch(digits_checkpoint, tmp_path):
    out = tmp_path / "model.pt"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        main(["export", "--ckpt_path", str(digits_checkpoint), "--format", "torchscript", "--out", str(out)])
    assert [w for w in caught if issubclass(w.category, FutureWarning)] == []  # the tracer's are hidden (--verbose shows them)
    loaded = torch.jit.load(str(out))
    wrapper, _, _ = exportable(digits_checkpoint)
    x = _raw_images(5)
    with torch.no_grad():
        np.testing.assert_allclose(loaded(x).numpy(), wrapper(x).numpy(), atol=1e-5)
    assert not loaded(x).requires_grad  # exported in inference mode
    with pytest.raises(SystemExit):
        main(["export", "--ckpt_path", str(digits_checkpoint), "--format", "tflite", "--out", str(out)])
    assert Path(out).stat().st_size > 10_000


def test_the_readme_onnxruntime_example_runs(digits_checkpoint, tmp_path, monkeypatch):
    from PIL import Image
    from sklearn.datasets import load_digits

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme.split("Images go in as float pixel values 0-255, probabilities come out:\n\n```python\n", 1)[1].split("```", 1)[0]
    main(["export", "--ckpt_path", str(digits_checkpoint), "--format", "onnx", "--out", str(tmp_path / "model.onnx")])
    Image.fromarray(np.uint8(load_digits().images[0] * 255 / 16)).save(tmp_path / "digit.png")
    monkeypatch.chdir(tmp_path)
    printed = []
    exec(compile(block, "README.md", "exec"), {"print": lambda *a: printed.append(a)})
    assert printed and printed[0][0] in [str(d) for d in range(10)] and 0 < printed[0][1] <= 1


def test_the_format_follows_the_suffix_and_nothing_is_overwritten(digits_checkpoint, tmp_path, capsys):
    from lt_imbalance.inference.export import export

    assert export(digits_checkpoint, None, tmp_path / "m.pt")["format"] == "torchscript"  # no --format: from the suffix
    torch.jit.load(str(tmp_path / "m.pt"))
    before = (tmp_path / "m.pt").read_bytes()
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--ckpt_path", str(digits_checkpoint), "--out", str(tmp_path / "m.pt")])
    assert exit_info.value.code == 2 and "exists; choose another --out, or pass --overwrite" in capsys.readouterr().err
    assert (tmp_path / "m.pt").read_bytes() == before
    main(["export", "--ckpt_path", str(digits_checkpoint), "--out", str(tmp_path / "m.pt"), "--overwrite"])
    with pytest.raises(SystemExit):
        main(["export", "--ckpt_path", str(digits_checkpoint), "--format", "torchscript", "--out", str(tmp_path / "m.onnx")])
    assert "names a onnx file" in capsys.readouterr().err and not (tmp_path / "m.onnx").exists()
    with pytest.raises(SystemExit):
        main(["export", "--ckpt_path", str(digits_checkpoint), "--out", str(tmp_path / "model.bin")])
    assert "cannot tell the format from the suffix" in capsys.readouterr().err
