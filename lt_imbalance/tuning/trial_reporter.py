"""Reporting a trial's validation metric to its Optuna study from inside the ``fit`` process, and
stopping it early when the pruner says so.

``lt-imbalance tune`` runs every trial as its own ``lt-imbalance fit`` process and adds this
callback: after every validation it reports the monitored metric (``val/balanced_acc``) at the
epoch to the study's storage and writes ``objective.json`` in ``out``: the trial's value is the
mean of the last :data:`OBJECTIVE_LAST` validations (:func:`objective_value`; one epoch's value
moves with a handful of tail images). When the study's pruner says the trial is worse than its
peers at that epoch, the trainer stops and ``pruned.json`` says at which epoch, so that the tuner
marks the trial pruned. When the fit ends (the outputs calibrated on the validation split, and
adjusted to the study's target prior, which the trial's config carries as ``prior``), the trial is
judged as it will be deployed: ``objective.json`` gets the final weights' validation value as
deployed (the trial's value) and as trained, and ``val_outputs.npz`` their validation targets and
deployed probabilities, from which the report pairs trials image by image (with the pool positions
of the validation images, from which a cross-fitted trial assembles its out-of-fold outputs).

A trial that cannot learn stops early: when, after the learning-rate warm-up, the validation
predictions fall on one class alone for :data:`COLLAPSE_EPOCHS` validations in a row, the trainer
stops and ``collapsed.json`` says at which epoch, so that the tuner records the trial as collapsed
(pruned, not a failure of the study). Like pruning, this applies where a pruner watches the trial
(sampled trials; not the portfolio recipes, nor with ``--pruner none``).

The values the pruner compares are those of the outputs as deployed, re-weighted to the study's
target prior from the recipe's own prior (:mod:`lt_imbalance.model_prior`), so an ERM trial and a
Balanced Softmax trial are compared like with like at every epoch; only the calibration fitted when
the fit ends (temperature, which leaves the argmax alone, and class biases) is not in them.

The default ``median`` pruner decides only from :func:`prune_from` on: after the learning-rate
warm-up and after two thirds of the epochs (measured on digits-LT, 24 complete trials: the value
at a third of the epochs ranks the objective with Spearman 0.61, at two thirds with 0.89, and the
study's best trial stood below the median until half-way); ``hyperband`` and ``threshold:X`` keep
their own rules. Under DDP rank 0 reports and the decision is
broadcast to every rank. The same job as optuna-integration's Lightning callback, for a trial
that lives in another process.
"""

from __future__ import annotations

import json
from pathlib import Path

import lightning.pytorch as pl

from lt_imbalance.errors import BadValue

#: the trial's value: the mean of the monitored metric over this many last validations
OBJECTIVE_LAST = 3
#: a trial is stopped as collapsed after this many validations in a row predicting one class alone
COLLAPSE_EPOCHS = 2
#: the default (median) pruner decides from this share of the epochs on (and not inside the warm-up); module docstring
PRUNE_FROM_SHARE = 2 / 3


def objective_value(values: list[float], last: int = OBJECTIVE_LAST) -> float:
    """The mean of the last ``last`` values (all of them when there are fewer)."""
    tail = values[-last:]
    return sum(tail) / len(tail)


def prune_from(max_epochs: int, warmup_epochs: float, share: float = PRUNE_FROM_SHARE) -> int:
    """The first epoch (0-based) at which the default pruner may stop a trial: after the warm-up
    and after ``share`` of the epochs."""
    import math

    return max(math.ceil(warmup_epochs), math.ceil(share * max(1, max_epochs)))


def logged_value(trainer: pl.Trainer, monitor: str):
    """The value of ``monitor`` logged at this validation; a metric the model does not log is refused
    with the ones it does."""
    value = trainer.callback_metrics.get(monitor)
    if value is None:
        logged = sorted(k for k in trainer.callback_metrics if k.startswith("val/"))
        raise BadValue(f"--monitor {monitor!r} is not a metric the model logs; its validation metrics: {logged}")
    return value


class MonitorCheck(pl.Callback):
    """Refuse a ``monitor`` the model does not log, at the first validation (the tuner's one-batch
    check before any trial, :func:`~lt_imbalance.tuning.preflight.preflight`).

    Args:
        monitor: the study's ``--monitor``.
    """

    def __init__(self, monitor: str):
        self.monitor = monitor

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            logged_value(trainer, self.monitor)


class TrialReporter(pl.Callback):
    """Report ``monitor`` after each validation to trial ``trial_id`` of ``study`` at ``storage``.

    Args:
        storage: the study's storage URL (``sqlite:///...``, any SQLAlchemy URL, or ``journal:PATH``).
        study: the study name.
        trial_id: the trial's id in that storage.
        monitor: the logged metric to report, e.g. ``val/balanced_acc``.
        out: folder for ``objective.json`` (the last value) and ``pruned.json`` (when stopped early).
        pruner: the study's ``--pruner`` (rebuilt here: a pruner is not kept in the storage); ``none`` reports only.
        direction: the study's direction.
        report_steps: report every epoch's value to the study (for the pruner); a cross-fitted
            trial's later folds write their files only (the pruner watches the first fold).
    """

    def __init__(
        self,
        storage: str,
        study: str,
        trial_id: int,
        monitor: str,
        out: str,
        pruner: str = "median",
        direction: str = "maximize",
        report_steps: bool = True,
    ):
        self.storage, self.study_name, self.trial_id, self.monitor = storage, study, trial_id, monitor
        self.out, self.pruner, self.direction, self.report_steps = Path(out), pruner, direction, report_steps
        #: validations in a row whose predictions fell on one class alone
        self.one_class_in_a_row = 0
        self._trial = None
        self.values: list[float] = []
        self.first_decision = 0
        self.collapse_from = 0
        self.pruned = False

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        import math

        warmup = getattr(getattr(pl_module, "lr_schedule", None), "warmup_epochs", 0.0)
        self.collapse_from = math.ceil(warmup)
        if self.pruner.split(":")[0] == "median":
            self.first_decision = prune_from(trainer.max_epochs or 1, warmup)

    def _optuna_trial(self):
        if self._trial is None:
            import optuna

            from lt_imbalance.tuning.settings import make_pruner
            from lt_imbalance.tuning.storage import open_storage

            optuna.logging.set_verbosity(optuna.logging.WARNING)
            study = optuna.load_study(
                study_name=self.study_name, storage=open_storage(self.storage), pruner=make_pruner(self.pruner, self.direction)
            )
            self._trial = optuna.trial.Trial(study, self.trial_id)
        return self._trial

    def _standard_error(self, pl_module: pl.LightningModule) -> float | None:
        """The binomial standard error of the last validation's balanced accuracy (when that is the monitor)."""
        from lt_imbalance.metrics import balanced_accuracy_se

        result = getattr(pl_module, "evaluations", {}).get("val")
        if self.monitor != "val/balanced_acc" or result is None:
            return None
        return balanced_accuracy_se(result.confusion)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """After ``on_fit_end`` (the calibration): the trial's value as deployed (module docstring)."""
        from lt_imbalance.callbacks.calibrate_after_fit import CalibrateAfterFit
        from lt_imbalance.metrics import balanced_accuracy_se

        key = self.monitor.split("/", 1)[-1]
        final = next((c.final for c in trainer.callbacks if isinstance(c, CalibrateAfterFit) and c.final is not None), None)
        if stage != "fit" or not trainer.is_global_zero or final is None or not self.values or self.pruned:
            return
        deployed, as_trained = (final.result(which, pl_module.class_counts) for which in ("deployed", "as_trained"))
        if key not in deployed.metrics:  # a probability metric (nll, ece): the values during training stand
            return
        import numpy as np

        indices = np.asarray(getattr(trainer.datamodule, "val_indices", []), dtype=np.int64)
        if len(indices) != len(final.targets) or getattr(trainer.datamodule, "has_official_val", False):
            indices = np.full(len(final.targets), -1, dtype=np.int64)  # not positions in the training pool
        np.savez_compressed(
            self.out / "val_outputs.npz", targets=final.targets.numpy(), deployed=final.deployed.numpy(),
            as_trained=final.as_trained.numpy(), indices=indices,
        )  # fmt: skip
        record = {**json.loads((self.out / "objective.json").read_text()), "value": deployed.metrics[key],
                  "as_trained": as_trained.metrics[key], "during_training": objective_value(self.values),
                  "se": balanced_accuracy_se(deployed.confusion) if key == "balanced_acc" else None}  # fmt: skip
        (self.out / "objective.json").write_text(json.dumps(record))

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        value = logged_value(trainer, self.monitor)
        stop = False
        self.values.append(float(value))
        collapsed = self.pruner != "none" and trainer.current_epoch >= self.collapse_from and self._collapsed(pl_module)
        if trainer.is_global_zero and self.report_steps:
            trial = self._optuna_trial()
            trial.report(float(value), step=trainer.current_epoch)
            decide = self.pruner != "none" and trainer.current_epoch >= self.first_decision
            stop = decide and trial.should_prune()
        if trainer.is_global_zero:
            self.out.mkdir(parents=True, exist_ok=True)
            record = {"epoch": trainer.current_epoch, "value": objective_value(self.values), "last": float(value),
                      "over": self.values[-OBJECTIVE_LAST:], "se": self._standard_error(pl_module)}  # fmt: skip
            (self.out / "objective.json").write_text(json.dumps(record))
        stop, collapsed = trainer.strategy.broadcast((stop, collapsed))
        if stop or collapsed:
            trainer.should_stop, self.pruned = True, True
            if trainer.is_global_zero:
                record = {"epoch": trainer.current_epoch, "value": float(value)}
                if collapsed:
                    (self.out / "collapsed.json").write_text(json.dumps({**record, "in_a_row": COLLAPSE_EPOCHS}))
                else:
                    (self.out / "pruned.json").write_text(json.dumps(record))

    def _collapsed(self, pl_module: pl.LightningModule) -> bool:
        """Whether the validation predictions fell on one class alone :data:`COLLAPSE_EPOCHS` times in a row."""
        result = getattr(pl_module, "evaluations", {}).get("val")
        if result is None:
            return False
        predicted = int((result.confusion.sum(0) > 0).sum())  # rows: true class, columns: predicted class
        self.one_class_in_a_row = self.one_class_in_a_row + 1 if predicted <= 1 else 0
        return self.one_class_in_a_row >= COLLAPSE_EPOCHS
