"""When ``fit`` ends: the temperature that calibrates the model, and the class prior its outputs assume.

1. p_model: from the recipe where that is exact (:mod:`lt_imbalance.model_prior`).
2. The evaluated logits z' = z - tau log pi (after any post-hoc adjustment) of the validation
   split give T by temperature scaling, scored under the validation split's own class mix
   (:func:`lt_imbalance.calibration.fit_calibration`); for a recipe without a closed-form prior,
   p_model is estimated with T, shrunk towards the nearest exact recipe's. Refused, with the
   reason, when the validation split is the test set (the test set would then tune the outputs
   that it scores), empty, or classified without an error (T would go to 0); p_model is then the
   recipe's, or the nearest exact recipe's, said to be approximate.
3. The record (:class:`~lt_imbalance.calibration.Calibration`) goes to the module (so the ``test``
   after ``fit`` uses it), into the run's ``last.ckpt`` (the same file with one more entry, so it
   still resumes exactly as before) and into ``calibration.json`` in the run folder; the results
   table shows ECE and NLL on the validation split before and after.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_info

from lt_imbalance.calibration import CALIBRATION_KEY, Calibration, at_the_sharpest, fit_calibration
from lt_imbalance.callbacks.diagnostic_pass import evaluate
from lt_imbalance.callbacks.run_files import WritesRunFiles, log_files
from lt_imbalance.metrics import calibration_metrics
from lt_imbalance.model_prior import nearest_exponent, power_prior, prior_exponent


def ece_and_nll(logits: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    metrics = calibration_metrics(logits.shape[1])
    metrics.update(logits.double().softmax(1).float(), targets)
    return {k: v.item() for k, v in metrics.compute().items()}


Prior = tuple[torch.Tensor, str]  # a class prior and how it was obtained, in words


def recipe_priors(pl_module: pl.LightningModule, sampler: str) -> tuple[Prior | None, Prior, str]:
    """``(exact, nearest, recipe)``: the priors of the module's recipe (:mod:`lt_imbalance.model_prior`;
    ``exact`` is ``None`` where the recipe has no closed form, and then says why in ``recipe``)."""
    counts, loss, tau = pl_module.class_counts, pl_module.criterion, pl_module.posthoc_adjust_tau
    exponent, recipe = prior_exponent(sampler, loss, tau, pl_module.reweighting.kind)
    if exponent is not None:
        exact = (power_prior(counts, exponent), f"exact from the recipe ({recipe}): n_c^{exponent:g}")
        return exact, exact, recipe
    nearest = nearest_exponent(sampler, loss, tau)
    return None, (power_prior(counts, nearest), f"approximate: n_c^{nearest:g}, as if without what has no closed form ({recipe})"), recipe


class CalibrateAfterFit(WritesRunFiles):
    """Fits the temperature and records the model's prior when ``fit`` ends (module docstring).

    Examples:
        >>> trainer = pl.Trainer(callbacks=[CalibrateAfterFit()])  # doctest: +SKIP
    """

    def __init__(self):
        self.summaries: dict[str, dict[str, float]] = {}

    def summary(self, stage: str) -> dict[str, float]:
        """ECE and NLL before and after calibration on the validation split (``val``), and T."""
        return dict(self.summaries.get(stage, {}))

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if pl_module.class_counts is None or trainer.datamodule is None:
            return
        data = trainer.datamodule
        calibration = self.calibrate(pl_module, data)
        pl_module.set_calibration(calibration)
        if calibration.calibrated:
            self.summaries["val"] = {
                "temperature": calibration.temperature,
                "ece_uncalibrated": calibration.before["ece"],
                "nll_uncalibrated": calibration.before["nll"],
                "ece": calibration.after["ece"],
                "nll": calibration.after["nll"],
            }
        if trainer.is_global_zero:
            self.save(trainer, calibration)

    def calibrate(self, pl_module: pl.LightningModule, data) -> Calibration:
        exact, nearest, recipe = recipe_priors(pl_module, getattr(data, "sampler", "random"))
        val_set = getattr(data, "val_set", None)
        if getattr(data, "validates_on_test", False):
            return self.uncalibrated(
                exact, nearest, "the validation split is the test set (val_fraction: 0 without a validation split of its own)"
            )
        if val_set is None or len(val_set) == 0:
            return self.uncalibrated(exact, nearest, "there is no validation data")
        logits, targets = evaluate(pl_module, data, data.val_dataloader())  # in order, with the data module's workers
        evaluated = pl_module.output_adjustment(logits)  # temperature 1 here (reset when fit started)
        temperature, fitted = fit_calibration(evaluated, targets, exact[0] if exact else None, nearest[0])
        if at_the_sharpest(temperature):
            why = f"the {len(targets)} validation samples are all classified right, so there is no error to fit T on (it would go to 0)"
            return self.uncalibrated(exact, nearest, why)
        if exact is not None:
            prior, source = exact
        elif fitted is not None:
            prior, source = fitted, f"estimated on the validation split with the temperature ({recipe})"
        else:
            prior, source = nearest[0], nearest[1] + "; a class has no validation sample to estimate it"
        where = data.validation_source() if hasattr(data, "validation_source") else "validation split"
        return Calibration(
            temperature=temperature,
            model_prior=tuple(prior.tolist()),
            prior_source=source,
            fitted_on=f"{where}, {len(targets)} samples",
            before=ece_and_nll(evaluated, targets),
            after=ece_and_nll(evaluated / temperature, targets),
        )

    @staticmethod
    def uncalibrated(exact: Prior | None, nearest: Prior, why: str) -> Calibration:
        """T = 1 (``why`` says why), with the recipe's exact prior or else the nearest exact recipe's."""
        prior, source = exact if exact is not None else nearest
        return Calibration(model_prior=tuple(prior.tolist()), prior_source=source, not_calibrated=why)

    def save(self, trainer: pl.Trainer, calibration: Calibration) -> None:
        """Into ``last.ckpt`` (rewritten whole, atomically) and ``calibration.json``; one line says what was done."""
        checkpoint = trainer.checkpoint_callback
        last = Path(checkpoint.last_model_path) if checkpoint is not None and getattr(checkpoint, "last_model_path", "") else None
        if last is not None and last.is_file():
            contents = torch.load(last, map_location="cpu", weights_only=False)  # the file this run has just written
            contents[CALIBRATION_KEY] = calibration.as_dict()
            partial = last.with_name(last.name + ".partial")
            torch.save(contents, partial)
            os.replace(partial, last)
        if self.run_dir:
            path = Path(self.run_dir) / "calibration.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(calibration.as_dict(), indent=2) + "\n")
            log_files(trainer, self.run_dir, [path])
        if calibration.calibrated:
            before, after = calibration.before, calibration.after
            said = (
                f"calibration: temperature {calibration.temperature:.3f} fitted on the {calibration.fitted_on}: ECE "
                f"{100 * before['ece']:.2f}% -> {100 * after['ece']:.2f}%, NLL {before['nll']:.3f} -> {after['nll']:.3f}"
            )
        else:
            said = f"calibration: not calibrated, because {calibration.not_calibrated}"
        kept = f"; kept in {last}" if last is not None and last.is_file() else ""
        rank_zero_info(f"{said}; class prior of the outputs: {calibration.prior_source}{kept}")
