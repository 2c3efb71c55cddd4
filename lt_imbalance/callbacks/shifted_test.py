"""Test metrics under other class distributions than the balanced test set's: long-tailed like
training (forward), uniform, and inverted (backward), at several ratios, as test-agnostic
long-tail evaluations report them (e.g. Zhang et al. 2022, SADE: forward- / backward-LT test sets
at ratios 2 to 50).

Each distribution q re-weights the balanced test set's confusion matrix (no re-sampling, so no
sampling noise): accuracy = sum_c q_c r_c, macro-F1 from the re-weighted matrix
(:func:`lt_imbalance.metrics.reweighted_metrics`). Balanced accuracy and the many / medium / few
accuracies are means of per-class recalls and do not change with q, so they are not repeated.
"""

from __future__ import annotations

import lightning.pytorch as pl
from lightning.pytorch.utilities import rank_zero_info

from lt_imbalance.callbacks.run_files import WritesRunFiles, save_results
from lt_imbalance.contracts import EvaluatedModule, require
from lt_imbalance.errors import BadValue
from lt_imbalance.metrics import EvaluationResult, reweighted_metrics, shifted_class_prior

DEFAULT_DISTRIBUTIONS = ("forward_50", "forward_10", "uniform", "backward_10", "backward_50")
ROWS = (("acc", "top-1 accuracy"), ("macro_f1", "macro-F1"))


def parse_distribution(name: str) -> tuple[str, float]:
    """``forward_<ratio>``, ``backward_<ratio>`` or ``uniform`` -> (kind, ratio); errors say the form."""
    kind, _, ratio = name.partition("_")
    try:
        if kind == "uniform" and not ratio:
            return kind, 1.0
        if kind in ("forward", "backward") and float(ratio) >= 1:
            return kind, float(ratio)
    except ValueError:
        pass
    raise BadValue(f"test distribution {name!r}: write forward_<ratio>, backward_<ratio> (ratio >= 1, e.g. forward_50) or uniform")


class ShiftedTestDistributions(WritesRunFiles):
    """After ``test``: a table with one column per test distribution, printed and saved as
    ``results_test_shifted.md`` / ``.json`` in the run's folder, and logged as
    ``test_shifted/<metric>_<distribution>``.

    Args:
        distributions: names as :func:`parse_distribution` reads them.

    Examples:
        In a config::

            trainer:
              callbacks:
                - class_path: ShiftedTestDistributions
                  init_args: {distributions: [forward_50, forward_10, uniform, backward_10, backward_50]}
    """

    def __init__(self, distributions: list[str] = list(DEFAULT_DISTRIBUTIONS)):  # noqa: B006 - jsonargparse shows the default
        self.distributions = {name: parse_distribution(name) for name in distributions}
        if not self.distributions:
            raise BadValue("give at least one test distribution")

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        require(pl_module, EvaluatedModule, "ShiftedTestDistributions", "ImbalancedClassifier")

    def compute(self, result: EvaluationResult) -> dict[str, dict[str, float]]:
        """``{distribution: {metric: value}}`` of a test evaluation."""
        if result.class_counts is None:
            raise BadValue("shifted test distributions follow the training order: the module needs class_counts")
        return {
            name: reweighted_metrics(result.confusion, shifted_class_prior(result.class_counts, kind, ratio))
            for name, (kind, ratio) in self.distributions.items()
        }

    @staticmethod
    def format_table(title: str, values: dict[str, dict[str, float]]) -> str:
        names = list(values)
        lines = [f"### {title}", "", "| metric | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
        for key, label in ROWS:
            lines.append(f"| {label} | " + " | ".join(f"{100 * values[n][key]:.2f}" for n in names) + " |")
        return "\n".join(lines)

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        log_dir = self.run_dir
        result = pl_module.evaluations.get("test")
        if result is None or not trainer.is_global_zero:
            return
        values = self.compute(result)
        title = "Test metrics (%) under shifted class distributions (forward: long-tailed as training; backward: inverted)"
        table = self.format_table(title, values)
        rank_zero_info("\n" + table + "\n")
        for logger in trainer.loggers:
            logger.log_metrics({f"test_shifted/{k}_{n}": v[k] for n, v in values.items() for k, _ in ROWS}, step=trainer.global_step)
        save_results(trainer, log_dir, "results_test_shifted", table, values)
