"""A target prior q (``--prior``) for ``fit`` and ``test``, and after ``test`` the model as trained
and the model adapted to q, both scored on the test set re-weighted to q.

Given q, the module's outputs deploy for it from the start of ``fit`` (so its checkpoints carry it,
and validation, the checkpoint monitor and a tuner's trials judge the adapted model) and of
``test`` (after the checkpoint is loaded; the test's own table and ``results_test.json`` are the
adapted model's, on the test set as it is).

The adapted model predicts argmax_y p(y | x) q(y) / p_model(y) (:mod:`lt_imbalance.label_shift`);
its confusion matrix on the test set, with each row rescaled to q
(:func:`lt_imbalance.metrics.reweighted_metrics`), gives the accuracy and macro-F1 expected where
the classes follow q. The table is printed and saved as ``results_test_prior.md`` / ``.json``.
"""

from __future__ import annotations

import lightning.pytorch as pl
from lightning.pytorch.utilities import rank_zero_info

from lt_imbalance.callbacks.run_files import WritesRunFiles, save_results
from lt_imbalance.callbacks.shifted_test import ShiftedTestDistributions
from lt_imbalance.label_shift import TargetPrior
from lt_imbalance.metrics import reweighted_metrics


class TargetPriorReport(WritesRunFiles):
    """The table of the module docstring, when the module's outputs have a target prior and it was tested with it.

    Args:
        target: the prior to deploy for (:func:`~lt_imbalance.label_shift.parse_prior`); ``None``: the module's own.
    """

    def __init__(self, target: TargetPrior | None = None):
        self.target = target

    def deploy(self, pl_module: pl.LightningModule) -> None:
        if self.target is not None:
            pl_module.outputs.set_target(self.target)

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.deploy(pl_module)

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.deploy(pl_module)

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        as_trained = pl_module.evaluations.get("test_as_trained")
        if as_trained is None or not pl_module.outputs.has_target or not trainer.is_global_zero:
            return
        q = pl_module.outputs.target_prior.double()
        columns = {
            "as trained": reweighted_metrics(as_trained.confusion, q),
            "adapted to the prior": reweighted_metrics(pl_module.evaluations["test"].confusion, q),
        }
        title = "Test set re-weighted to the target prior (%): the model as trained and adapted to it"
        table = ShiftedTestDistributions.format_table(title, columns)  # the same rows as the shifted-distribution table
        rank_zero_info("\n" + table + "\n")
        record = {"target_prior": q.tolist(), "model_prior": pl_module.outputs.prior().tolist(), **columns}
        save_results(trainer, self.run_dir, "results_test_prior", table, record)
