"""After ``test`` with a target prior q (``--prior``): the model as trained and the model adapted
to q, both scored on the test set re-weighted to q.

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
from lt_imbalance.metrics import reweighted_metrics


class TargetPriorReport(WritesRunFiles):
    """The table of the module docstring, when the module has a ``target_prior`` and tested with it."""

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        adapted = pl_module.evaluations.get("test_adapted")
        q = getattr(pl_module, "target_prior", None)
        if adapted is None or q is None or not trainer.is_global_zero:
            return
        columns = {
            "as trained": reweighted_metrics(pl_module.evaluations["test"].confusion, q),
            "adapted to the prior": reweighted_metrics(adapted.confusion, q),
        }
        title = "Test set re-weighted to the target prior (%): the model as trained and adapted to it"
        table = ShiftedTestDistributions.format_table(title, columns)  # the same rows as the shifted-distribution table
        rank_zero_info("\n" + table + "\n")
        record = {"target_prior": q.tolist(), "model_prior": list(pl_module.calibration.model_prior), **columns}
        save_results(trainer, self.run_dir, "results_test_prior", table, record)
