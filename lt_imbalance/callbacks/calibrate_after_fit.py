"""When ``fit`` ends: the outputs calibrated on the validation split, and what was done said once.

1. The final weights' logits of the validation split go to the outputs' owner,
   :meth:`lt_imbalance.post_processor.PostProcessor.fit`, which chooses the calibrator by held-out
   NLL and fits it under the split's own class mix (:mod:`lt_imbalance.calibration`). Not
   calibrated, with the reason, when the validation split is the test set (the test set would
   then tune the outputs that it scores) or empty, or in a ``fast_dev_run`` (a smoke test: a pass
   over the whole validation split would defeat it).
2. The owner's state is part of the weights' state dict, so the ``test`` after ``fit`` uses it;
   the run's checkpoints of the final weights (``last.ckpt``, and a top-k one saved at the same
   step) get the new state of those entries, rewritten whole and atomically (everything else, the
   loops included, unchanged, so they resume as before). A top-k checkpoint of earlier weights
   keeps its outputs uncalibrated, with the prior they assume, and says so.
3. ``calibration.json`` in the run folder and one printed line say which calibrator, where it was
   fitted, and the NLL and ECE before and after under the objective it minimised.
4. The final weights' validation probabilities, as deployed and as trained, stay with the callback
   (:class:`FinalValidation`): a tuner's trial is judged on them (:mod:`lt_imbalance.tuning.trial_reporter`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_info

from lt_imbalance.callbacks.diagnostic_pass import evaluate
from lt_imbalance.callbacks.run_files import WritesRunFiles, log_files
from lt_imbalance.metrics import EvaluationResult
from lt_imbalance.output_files import write_text, write_with


@dataclass(frozen=True)
class FinalValidation:
    """The final weights on the validation split, in its order: ``targets`` [N], and the class
    probabilities [N, C] ``deployed`` (calibrated, re-weighted to the target prior when the outputs
    have one: what ``predict`` gives) and ``as_trained`` (calibrated, under the prior the training
    left them with, p_model: the ``as trained`` of the validation and test tables)."""

    targets: torch.Tensor
    deployed: torch.Tensor
    as_trained: torch.Tensor

    def result(self, which: str, class_counts: list[int] | None) -> EvaluationResult:
        """The metrics of the ``deployed`` or ``as_trained`` predictions (argmax)."""
        from torchmetrics.functional.classification import multiclass_confusion_matrix

        probabilities = getattr(self, which)
        confusion = multiclass_confusion_matrix(probabilities.argmax(1), self.targets, probabilities.shape[1])
        return EvaluationResult.from_confusion(f"val_final_{which}", -1, confusion, class_counts)


def outputs_prefix(pl_module: pl.LightningModule) -> str:
    """The state-dict prefix of the module's outputs owner."""
    return next(f"{name}." for name, module in pl_module.named_modules() if module is pl_module.outputs)


class CalibrateAfterFit(WritesRunFiles):
    """Calibrates the module's outputs when ``fit`` ends (module docstring).

    Examples:
        >>> trainer = pl.Trainer(callbacks=[CalibrateAfterFit()])  # doctest: +SKIP
    """

    def __init__(self):
        self.summaries: dict[str, dict[str, float]] = {}
        #: the final weights on the validation split, once calibrated (None before, or when not calibrated)
        self.final: FinalValidation | None = None

    def summary(self, stage: str) -> dict[str, float]:
        """NLL and ECE before and after calibration on the validation split (``val``), and T."""
        return dict(self.summaries.get(stage, {}))

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if pl_module.class_counts is None or trainer.datamodule is None:
            return
        outputs = pl_module.outputs
        why = "a fast_dev_run only checks the pipeline" if trainer.fast_dev_run else self.why_not(trainer.datamodule)
        if why is None:
            data = trainer.datamodule
            logits, targets = evaluate(pl_module, data, data.val_dataloader())  # in order, with the data module's workers
            where = data.validation_source() if hasattr(data, "validation_source") else "validation split"
            logits = logits.to(pl_module.device)
            outputs.fit(logits, targets.to(pl_module.device), where)
            with torch.no_grad():
                deployed, as_trained = outputs(logits), outputs.evaluated(logits).float().softmax(1)
            self.final = FinalValidation(targets.long().cpu(), deployed.float().cpu(), as_trained.cpu())
        else:
            outputs.not_calibrated(why)
        record = outputs.record
        if outputs.calibrated:
            self.summaries["val"] = {
                "temperature": float(outputs.temperature),
                "ece_uncalibrated": record.before["ece"],
                "nll_uncalibrated": record.before["nll"],
                "ece": record.after["ece"],
                "nll": record.after["nll"],
            }
        if trainer.is_global_zero:
            self.save(trainer, pl_module)

    @staticmethod
    def why_not(data) -> str | None:
        if getattr(data, "validates_on_test", False):
            return "the validation split is the test set (val_fraction: 0 without a validation split of its own)"
        val_set = getattr(data, "val_set", None)
        if val_set is None or len(val_set) == 0:
            return "there is no validation data"
        return None

    def save(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """The outputs' state into the checkpoints of the final weights, ``calibration.json``, and one line."""
        outputs = pl_module.outputs
        state = {outputs_prefix(pl_module) + k: v for k, v in outputs.state_dict().items()}
        for path in final_checkpoints(trainer):
            contents = torch.load(path, map_location="cpu", weights_only=False)  # a file this run has just written
            if contents.get("global_step") != trainer.global_step:
                continue  # earlier weights: their outputs stay uncalibrated, said in their record
            contents["state_dict"].update(state)
            write_with(path, lambda partial, contents=contents: torch.save(contents, partial), "the calibrated checkpoint")
        checkpoint = trainer.checkpoint_callback
        last = Path(checkpoint.last_model_path) if checkpoint is not None and getattr(checkpoint, "last_model_path", "") else None
        names = getattr(trainer.datamodule, "class_names", None)
        if self.run_dir:
            path = Path(self.run_dir) / "calibration.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_text(path, json.dumps(outputs.describe(names), indent=2) + "\n", "the calibration record")
            log_files(trainer, self.run_dir, [path])
        kept = f"; kept with the weights in {last}" if last is not None and last.is_file() else ""
        rank_zero_info(f"{calibration_line(outputs)}; class prior of the outputs: {outputs.record.prior_source}{kept}")


def final_checkpoints(trainer: pl.Trainer) -> list[Path]:
    """The checkpoint files this run's checkpoint callbacks wrote (last and top-k), once each."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    paths: set[Path] = set()
    for callback in trainer.callbacks:
        if isinstance(callback, ModelCheckpoint):
            named = [callback.last_model_path, callback.best_model_path, *callback.best_k_models]
            paths.update(Path(p) for p in named if p and Path(p).is_file())
    return sorted(paths)


def calibration_line(outputs) -> str:
    """What calibration did, in one line (the numbers of ``calibration.json``)."""
    record = outputs.record
    candidates = ", ".join(f"{kind} {nll:.3f}" for kind, nll in record.held_out.items())
    chosen_by = f" (held-out NLL: {candidates})" if candidates else ""
    if not outputs.calibrated:
        return f"calibration: not calibrated, because {record.not_calibrated}{chosen_by}"
    before, after = record.before, record.after
    said = (
        f"calibration: {record.calibrator} (T = {float(outputs.temperature):.3f}) chosen{chosen_by} and fitted on the "
        f"{record.fitted_on}, scored under its class mix: NLL {before['nll']:.3f} -> {after['nll']:.3f}, ECE "
        f"{100 * before['ece']:.2f}% -> {100 * after['ece']:.2f}%"
    )
    return said + (f"; {record.note}" if record.note else "")
