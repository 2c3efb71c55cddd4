"""``lt-imbalance export``: the trained model as one ONNX or TorchScript file, normalisation inside.

    lt-imbalance export --ckpt_path <run>/checkpoints/last.ckpt --format onnx --out model.onnx

The exported graph maps raw inputs to class probabilities:

- images: ``images`` float32 ``[batch, C, H, W]`` with pixel values 0..255 (decoded, resized and
  centre-cropped to the training size, channels as in training) -> ``(x / 255 - mean) / std`` ->
  network -> the model's output adjustment -> softmax;
- tables: ``features`` float32 ``[batch, F]``, the encoded rows (see
  :mod:`lt_imbalance.inference.tables`) -> network -> the output adjustment -> softmax.

The outputs' owner (:class:`~lt_imbalance.post_processor.PostProcessor`) is the one ``test`` and
``predict`` apply: post-hoc logit adjustment when trained with it, the calibration fitted when
training ended, and with ``prior`` (train, uniform, or a file of class shares) the re-weighting
to that class mix. An ensemble file (:mod:`lt_imbalance.ensemble_classifier`) exports as one graph:
every member's network and adjustment, their probabilities averaged, then the ensemble's own
re-weighting. The batch size is dynamic. Beside the file, ``<out>.json`` names the classes in
output order, describes the input, and says whether the outputs are calibrated and which class
prior they assume. ONNX export needs the ``export`` extra (onnx, onnxscript; onnxruntime to run it).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from lt_imbalance.console import verbose
from lt_imbalance.errors import BadValue, FileInTheWay, UnsupportedCombination
from lt_imbalance.inference.trained_model import load_trained
from lt_imbalance.inputs import InputSpec, Preprocessor
from lt_imbalance.label_shift import parse_prior
from lt_imbalance.models.ensemble import WeightedEnsemble
from lt_imbalance.output_files import make_folder, replaced_when_done, write_text


class ExportedClassifier(nn.Module):
    """Raw inputs -> probabilities (module docstring), for export: the training run's own pieces.

    Args:
        preprocessor: raw inputs -> network inputs (:class:`~lt_imbalance.inputs.Preprocessor`).
        network: the classifier network (backbone + head).
        outputs: the module's outputs owner (:class:`~lt_imbalance.post_processor.PostProcessor`): logits -> probabilities.
    """

    def __init__(self, preprocessor: nn.Module, network: nn.Module, outputs: nn.Module):
        super().__init__()
        self.preprocessor, self.network, self.outputs = preprocessor, network, outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.outputs(self.network(self.preprocessor(x)))


def exportable(ckpt_path: str | Path, prior: str | None = None) -> tuple[ExportedClassifier, InputSpec, dict]:
    """The checkpoint's model wrapped for export (re-weighted to ``prior`` when given), its input
    description, and what its outputs are (calibrated? which class prior?)."""
    model, spec = load_trained(ckpt_path)
    target = parse_prior(prior, list(spec.class_names), list(spec.class_counts), "export")
    if target is not None:
        model.outputs.set_target(target)
    wrapper = ExportedClassifier(Preprocessor(spec), model.net, model.outputs).eval().requires_grad_(False)
    described = outputs_description(model.outputs, spec)
    if isinstance(model.net, WeightedEnsemble):
        described["ensemble"] = {"members": len(model.net.networks), "weights": [round(w, 6) for w in model.net.weights.tolist()]}
    return wrapper, spec, described  # inference only: the exported outputs track no gradients


def outputs_description(outputs, spec: InputSpec) -> dict:
    """The JSON's ``outputs`` entry: calibration and the class prior the probabilities assume."""
    described = outputs.describe(list(spec.class_names))
    record = outputs.record
    summary = {
        "calibrated": described["calibrated"],
        "temperature": described["temperature"],
        "calibration": f"{record.calibrator} on the {record.fitted_on}" if described["calibrated"] else record.not_calibrated,
        "details": described,
    }
    if described["target_prior"] is not None:
        summary["prior"] = {"assumed": f"target prior ({described['target']}), baked in", "shares": described["target_prior"]}
    elif described["model_prior"] is not None:
        summary["prior"] = {"assumed": f"the model's own: {record.prior_source}", "shares": described["model_prior"]}
    else:
        summary["prior"] = {"assumed": "unknown (a checkpoint written before the prior was recorded)"}
    if described["model_prior"] is not None:
        summary["model_prior"] = described["model_prior"]
    return summary


#: file suffix -> export format
SUFFIXES = {".onnx": "onnx", ".pt": "torchscript", ".pth": "torchscript", ".torchscript": "torchscript"}


def export_format(fmt: str | None, out: Path) -> str:
    """The format of ``--format``, or of ``out``'s suffix when it is not given; a contradiction is refused."""
    implied = SUFFIXES.get(out.suffix.lower())
    if fmt is None:
        if implied is None:
            raise BadValue(
                f"--out {out}: cannot tell the format from the suffix; end it in .onnx or .pt, or give --format onnx|torchscript"
            )
        return implied
    if implied is not None and implied != fmt:
        raise UnsupportedCombination(f"--format {fmt} but --out {out} names a {implied} file; change the suffix or the format")
    return fmt


def export(ckpt_path: str | Path, fmt: str | None, out: str | Path, overwrite: bool = False, prior: str | None = None) -> dict:
    """Write the exported model and its ``.json`` description; returns the description. The format
    comes from ``fmt`` or ``out``'s suffix; an existing file is kept unless ``overwrite``; ``prior``
    bakes a target class prior in (:func:`exportable`)."""
    out = Path(out)
    fmt = export_format(fmt, out)
    if out.is_dir():
        raise FileInTheWay(f"--out {out} is a folder; give a file in it, e.g. --out {out / ('model' + out.suffix)}")
    description_file = out.with_name(out.name + ".json")
    inputs = [p for p in (out, description_file) if p.exists() and Path(ckpt_path).exists() and p.samefile(ckpt_path)]
    if inputs:
        raise FileInTheWay(f"--out {out} would replace the checkpoint being exported ({ckpt_path}); choose another --out")
    taken = [p for p in (out, description_file) if p.exists()]
    if taken and not overwrite:
        raise FileInTheWay(f"{', '.join(map(str, taken))} exists; choose another --out, or pass --overwrite to replace it")
    wrapper, spec, outputs = exportable(ckpt_path, prior)
    make_folder(out.parent, "the folder of --out")
    with replaced_when_done(out, "the exported model") as model:
        description = write_model(wrapper, spec, outputs, fmt, model)
        write_text(description_file, json.dumps(description, indent=2), "the exported model's description")
    return description


def write_model(wrapper: ExportedClassifier, spec: InputSpec, outputs: dict, fmt: str, out: Path) -> dict:
    """The model in ``fmt`` at ``out``; returns its description."""
    images = spec.images
    name = "images" if images else "features"
    example = torch.rand(2, *spec.input_shape) * (255.0 if images else 1.0)
    if fmt == "onnx":
        try:
            import onnxscript  # noqa: F401  (the exporter's dependency)
        except ImportError as err:
            raise BadValue(
                "ONNX export needs the export extra: pip install 'lt_imbalance[export]' (onnx, onnxscript, onnxruntime)"
            ) from err
        batch = torch.export.Dim("batch", min=1)
        torch.onnx.export(
            wrapper, (example,), str(out), input_names=[name], output_names=["probabilities"], dynamic_shapes=({0: batch},),
            dynamo=True, external_data=False, verbose=None if verbose() else False,  # None: the exporter's progress lines
        )  # fmt: skip
    elif fmt == "torchscript":
        torch.jit.save(torch.jit.trace(wrapper, example), str(out))
    else:
        raise BadValue(f"unknown export format {fmt!r}; choose onnx or torchscript")
    description = {
        "format": fmt,
        "input": {
            "name": name,
            "shape": ["batch", *spec.input_shape],
            "dtype": "float32",
            "range": "0..255 pixel values" if images else "encoded features",
        },
        "output": {"name": "probabilities", "shape": ["batch", spec.num_classes], **outputs},
        "class_names": list(spec.class_names),
        "class_counts": list(spec.class_counts),
    }
    if images:
        resize = spec.resize_size or spec.input_shape[-1]
        description["input"]["preprocessing"] = f"RGB or grey as channels say; resize the shorter side to {resize}, centre-crop to the size"
        description["input"]["resize_size"] = resize
    else:
        description["input"]["preprocessing"] = spec.preprocessing
    return description
