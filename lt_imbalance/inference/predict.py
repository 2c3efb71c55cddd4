"""``lt-imbalance predict``: class probabilities for new data from a checkpoint alone.

    lt-imbalance predict --ckpt_path runs/digits_lt/lightning_logs/version_0/checkpoints/last.ckpt \\
        --input my_images/ --output predictions.csv [--top_k 3] [--batch_size 256] [--strict]

- ``--input``: a folder of images (searched recursively), a text file listing image paths (one per
  line, relative to the file), or a ``.csv`` / ``.parquet`` table for a tabular model;
- the checkpoint holds everything else (written by training: class names and counts, input size
  and channels, normalisation, the fitted table preprocessing; the model's post-hoc logit
  adjustment applies as in evaluation);
- images are decoded to the model's channels (a grey image for an RGB model is converted), resized
  (shorter side) and centre-cropped, and normalised as in training;
- an unreadable image is reported by path and skipped, with a count at the end (``--strict`` fails
  the run instead);
- the CSV, written batch by batch by a Lightning prediction writer, has one row per input: the
  input, the predicted class name and its probability, and the ``top_k`` classes with theirs;
- ``--ckpt_path`` may be an ensemble file (:mod:`lt_imbalance.ensemble_classifier`, written by
  ``lt-imbalance tune``): the members' adjusted probabilities averaged, everything else the same;
- the probabilities are calibrated (the temperature fitted when training ended) and, with
  ``--prior train|uniform|<file>``, re-weighted to that class prior; with ``--prior estimate`` the
  class mix of the inputs is estimated by EM (:mod:`lt_imbalance.label_shift`) from their
  calibrated probabilities, kept in memory (N x C x 4 bytes, said), printed with a bootstrap
  standard error and saved beside the CSV as ``<output>.prior.csv``, and the rows are written
  re-weighted to it. With fewer than :data:`MIN_INPUTS_PER_CLASS` inputs per class the estimate
  is too unstable to use: it is said, and the model's own prior is kept.
"""

from __future__ import annotations

import csv
import os
import time
from functools import partial
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from torch.utils.data import DataLoader, Dataset

from lt_imbalance.data.datasets import ImageFileDataset
from lt_imbalance.data.readers.folders import IMAGE_SUFFIXES
from lt_imbalance.errors import BadValue, FileInTheWay, MissingFile
from lt_imbalance.inference.trained_model import load_trained
from lt_imbalance.inputs import InputSpec, Preprocessor
from lt_imbalance.label_shift import adapt_to_prior, bootstrap_prior, estimate_prior, parse_prior
from lt_imbalance.models.ensemble import WeightedEnsemble
from lt_imbalance.output_files import cannot_write, make_folder, replaced_when_done, target_of

#: fewest inputs per class for ``--prior estimate`` (below: the model's prior is kept); chosen on pool images no run
#: used, digits-LT and a table (README, "Deploying where the class mix differs"): at 1 per class the estimate cost
#: accuracy where adapting to the true mix gained (1.5 points), from 2 per class at most 0.2
MIN_INPUTS_PER_CLASS = 2
#: bootstrap resamples behind the estimate's standard error
BOOTSTRAP_REPEATS = 100


# ---- the inputs ------------------------------------------------------------------------------------------
def list_images(path: Path) -> list[Path]:
    """Image files of a folder (recursive, sorted) or listed in a text file (relative to it)."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not files:
            raise BadValue(f"'{path}' holds no images (looked for {sorted(IMAGE_SUFFIXES)})")
        return files
    lines = [line.strip() for line in path.read_text().splitlines()]
    files = [(path.parent / line) if not Path(line).is_absolute() else Path(line) for line in lines if line and not line.startswith("#")]
    if not files:
        raise BadValue(f"'{path}' lists no image paths (one per line)")
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise MissingFile(
            f"{len(missing)} of the {len(files)} images listed in '{path}' are not there, e.g. '{missing[0]}'; relative paths "
            f"in a list are read from the list's own folder ('{path.parent}'): write them relative to it, or absolute"
        )
    return files


class PredictionImages(Dataset):
    """``(uint8 image or None, index)``: None for an unreadable file unless ``strict``."""

    def __init__(self, paths: list[Path], spec: InputSpec, strict: bool):
        channels, _, size = spec.input_shape
        labels = torch.zeros(len(paths), dtype=torch.long)
        self.files = ImageFileDataset(paths, labels, size, channels, resize_size=spec.resize_size)
        self.strict = strict

    def __len__(self) -> int:
        return len(self.files.paths)

    def __getitem__(self, i: int):
        try:
            return self.files.load(i), i
        except OSError:
            if self.strict:
                raise
            return None, i


def collate(items: list, shape: tuple[int, ...], dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Stack the readable samples (an empty batch of ``shape`` when none is); the indices of the
    unreadable ones ride along."""
    good = [(x, i) for x, i in items if x is not None]
    skipped = [i for x, i in items if x is None]
    if not good:
        return torch.empty((0, *shape), dtype=dtype), torch.empty(0, dtype=torch.long), skipped
    return torch.stack([x for x, _ in good]), torch.tensor([i for _, i in good]), skipped


class PredictionData(pl.LightningDataModule):
    """Serves the inputs for ``trainer.predict`` and turns them into model inputs on the device with
    the training run's own :class:`~lt_imbalance.inputs.Preprocessor`."""

    def __init__(self, dataset: Dataset, spec: InputSpec, batch_size: int, num_workers: int):
        super().__init__()
        self.dataset, self.spec, self.batch_size, self.num_workers = dataset, spec, batch_size, num_workers
        self.preprocessor = Preprocessor(spec)

    def predict_dataloader(self) -> DataLoader:
        dtype = torch.uint8 if self.spec.images else torch.float32
        join = partial(collate, shape=self.spec.input_shape, dtype=dtype)
        return DataLoader(self.dataset, batch_size=self.batch_size, num_workers=self.num_workers, collate_fn=join)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        x, index, skipped = batch
        return self.preprocessor.to(x.device)(x), index, skipped


class CsvPredictionWriter(BasePredictionWriter):
    """Writes each batch's rows as they come (module docstring) into ``<output>.partial``, which
    :meth:`close` renames to ``output`` when predict succeeded and removes otherwise, so a failed
    run leaves no file; counts what was skipped. With ``collect``, keeps the batches'
    probabilities instead (:meth:`write_rows` writes them later)."""

    def __init__(self, output: Path, names: list[str], class_names: list[str], top_k: int, collect: bool = False):
        super().__init__(write_interval="batch")
        self.output, self.names, self.class_names, self.top_k = output, names, class_names, min(top_k, len(class_names))
        self.written, self.skipped, self.collect = 0, [], collect
        self.kept: list[tuple[torch.Tensor, torch.Tensor]] = []
        make_folder(output.parent, "the folder of --output")
        self.final = target_of(output)  # a symbolic link is written through
        if self.final.exists() and not self.final.is_file():
            raise FileInTheWay(f"--output {output} is not a regular file ({self.final}); give a file path ending in .csv")
        self.partial = self.final.with_name(self.final.name + ".partial")
        try:
            self._file = open(self.partial, "w", newline="")
        except OSError as err:
            cannot_write(err, f"the predictions {output} could not be started")
        self._csv = csv.writer(self._file)
        header = ["input", "prediction", "probability"]
        for k in range(1, self.top_k + 1):
            header += [f"top{k}_class", f"top{k}_probability"]
        self._csv.writerow(header)

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx=0) -> None:
        _, index, skipped = batch
        self.skipped += [self.names[i] for i in skipped]
        if len(index) == 0:
            return
        if self.collect:
            self.kept.append((index.cpu(), prediction.float().cpu()))
        else:
            self.write_rows(index, prediction)

    def collected(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The kept ``(indices [N], probabilities [N, C])``."""
        if not self.kept:
            return torch.empty(0, dtype=torch.long), torch.empty(0, len(self.class_names))
        return torch.cat([i for i, _ in self.kept]), torch.cat([p for _, p in self.kept])

    def write_rows(self, index: torch.Tensor, probabilities: torch.Tensor) -> None:
        top = probabilities.float().cpu().topk(self.top_k, dim=1)
        for row, i in enumerate(index.tolist()):
            classes = [self.class_names[c] for c in top.indices[row].tolist()]
            values = top.values[row].tolist()
            cells = [self.names[i], classes[0], f"{values[0]:.6f}"]
            for name, p in zip(classes, values):
                cells += [name, f"{p:.6f}"]
            self._csv.writerow(cells)
        self.written += len(index)
        self._file.flush()

    def close(self, succeeded: bool) -> None:
        """The rows into ``output`` when predict succeeded and wrote some; else no file."""
        try:
            self._file.close()  # flushes: may still find the disk full
            if succeeded and self.written:
                os.replace(self.partial, self.final)
                return
        except OSError:
            if succeeded:
                self.partial.unlink(missing_ok=True)
                raise
        self.partial.unlink(missing_ok=True)


#: inputs this many times larger or smaller than the training images are said to be far from them
SIZE_RATIO_NOTED = 2.0


def size_note(first: Path, spec: InputSpec) -> str | None:
    """A line when the first input image is far from the training size (resizing hides it, and the
    model may do worse on such images), else ``None``."""
    from PIL import Image

    try:
        with Image.open(first) as image:
            side = min(image.size)
    except OSError:
        return None
    trained = spec.resize_size or spec.input_shape[-1]
    if max(side / trained, trained / side) < SIZE_RATIO_NOTED:
        return None
    return (
        f"the inputs are {side} px on their shorter side (the first, '{first}'); the model was trained on {trained} px images, "
        f"so they are resized to {spec.input_shape[-1]} px: predictions may be worse than on images like the training ones"
    )


def prior_path(output: str | Path) -> Path:
    """Where ``--prior estimate`` saves the estimated class mix: beside the predictions."""
    return Path(str(output) + ".prior.csv")


def estimated_mix(probabilities: torch.Tensor, model_prior: torch.Tensor, class_names: list[str], output: Path) -> dict:
    """EM's class mix of the inputs with bootstrap standard errors, saved to ``output``; ``used`` is
    False (and the model's prior kept) below :data:`MIN_INPUTS_PER_CLASS` inputs per class."""
    n, c = probabilities.shape
    needed = MIN_INPUTS_PER_CLASS * c
    memory = probabilities.numel() * 4 / 2**20
    if n < needed:
        return {"used": False, "prior": model_prior, "inputs": n, "needed": needed, "per_class": MIN_INPUTS_PER_CLASS, "memory_mib": memory}
    estimate, iterations = estimate_prior(probabilities, model_prior)
    se = bootstrap_prior(probabilities, model_prior, BOOTSTRAP_REPEATS)
    with replaced_when_done(output, "the estimated class mix") as partial, open(partial, "w", newline="") as file:
        rows = csv.writer(file)
        rows.writerow(["class", "share", "standard_error", "model_prior"])
        for name, share, error, assumed in zip(class_names, estimate.tolist(), se.tolist(), model_prior.tolist()):
            rows.writerow([name, f"{share:.6f}", f"{error:.6f}", f"{assumed:.6f}"])
    return {
        "used": True,
        "prior": estimate,
        "se": se,
        "iterations": iterations,
        "repeats": BOOTSTRAP_REPEATS,
        "inputs": n,
        "memory_mib": memory,
        "file": str(output),
    }


# ---- the command ---------------------------------------------------------------------------------------------
def predict(
    ckpt_path: str,
    input_path: str,
    output: str,
    top_k: int = 3,
    batch_size: int = 256,
    num_workers: int = 0,
    strict: bool = False,
    accelerator: str = "auto",
    prior: str | None = None,
    overwrite: bool = False,
) -> dict:
    """Write the predictions CSV (re-weighted to ``prior``: train, uniform, a file, or estimate);
    returns counts, timing and, for ``estimate``, the estimate (:func:`estimated_mix`). The
    estimate's file beside the CSV is kept unless ``overwrite``."""
    model, spec = load_trained(ckpt_path)
    target = parse_prior(prior, list(spec.class_names), list(spec.class_counts), "predict")
    estimate = target is not None and target.estimate
    if estimate and prior_path(output).exists() and not overwrite:
        raise FileInTheWay(f"'{prior_path(output)}' exists; choose another --output, or pass --overwrite to replace it")
    if target is not None:
        model.outputs.prior()  # refuses a checkpoint that records no prior, before any input is read
        model.outputs.set_target(None if estimate else target)  # estimate: the rows under the model's own prior first
    result: dict = {"deployed_for": model.outputs.target_spec if model.outputs.has_target else None}
    if isinstance(model.net, WeightedEnsemble):
        result["ensemble"] = model.net.weights.tolist()
    source = Path(input_path)
    if not source.exists():
        raise MissingFile(f"input '{source}' not found; give a folder of images, a text file of image paths, or a .csv / .parquet table")
    if source.suffix.lower() in (".csv", ".parquet", ".pq"):
        dataset, names, result["value_note"] = _table_inputs(source, spec)
    else:
        if not spec.images:
            raise BadValue(f"this checkpoint is a tabular model; give a .csv or .parquet table as --input, not '{source}'")
        paths = list_images(source)
        dataset, names = PredictionImages(paths, spec, strict), [str(p) for p in paths]
        result["size_note"] = size_note(paths[0], spec)
    writer = CsvPredictionWriter(Path(output), names, list(spec.class_names), top_k, collect=estimate)
    trainer = pl.Trainer(
        accelerator=accelerator, devices=1, logger=False, callbacks=[writer], enable_progress_bar=False, enable_model_summary=False
    )
    start = time.perf_counter()
    succeeded = False
    try:
        trainer.predict(model, datamodule=PredictionData(dataset, spec, batch_size, num_workers), return_predictions=False)
        if estimate:
            index, probabilities = writer.collected()
            model_prior = model.outputs.prior()
            result["estimate"] = estimated_mix(probabilities, model_prior, list(spec.class_names), prior_path(output))
            writer.write_rows(index, adapt_to_prior(probabilities, model_prior, result["estimate"]["prior"]))
        succeeded = True
        writer.close(succeeded)
    except OSError as err:
        cannot_write(err, f"the predictions {output} were not written", "nothing was left half-written there")
    finally:
        if not succeeded:
            writer.close(False)
    seconds = time.perf_counter() - start
    return {
        **result,
        "class_names": list(spec.class_names),
        "written": writer.written,
        "skipped": writer.skipped,
        "seconds": seconds,
        "output": str(output),
    }


class TableRows(Dataset):
    """``(encoded row, index)`` of a table."""

    def __init__(self, features: torch.Tensor):
        self.features = features

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, i: int):
        return self.features[i], i


def _table_inputs(source: Path, spec: InputSpec) -> tuple[Dataset, list[str], str | None]:
    """The rows of the table ``source``, their names, and a warning about values far outside the
    training range (:func:`~lt_imbalance.inference.tables.extreme_values`)."""
    from lt_imbalance.data.readers.tables import read_table
    from lt_imbalance.inference.tables import encode_table, extreme_values

    if spec.images:
        raise BadValue(f"this checkpoint is an image model; give images (a folder or a list of paths) as --input, not the table '{source}'")
    frame = read_table(source)
    features = encode_table(frame, spec.preprocessing, str(source))
    note = extreme_values(frame, features, spec.preprocessing, str(source))
    return TableRows(torch.from_numpy(features)), [f"{source.name}:{i}" for i in range(len(frame))], note
