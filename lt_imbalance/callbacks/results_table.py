"""A compact results table printed at the end of ``fit`` (validation) and ``test``, and saved
as ``results_<stage>.md`` / ``.json`` in the run's log directory.

The numbers come from the module's :class:`~lt_imbalance.metrics.EvaluationResult` of the stage,
plus the summaries that other callbacks publish (:class:`lt_imbalance.contracts.PublishesSummary`,
e.g. the overfitting gaps of :class:`~lt_imbalance.callbacks.OverfittingMonitor`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import lightning.pytorch as pl
from lightning.pytorch.utilities import rank_zero_info

from lt_imbalance.callbacks.run_files import WritesRunFiles, save_results
from lt_imbalance.contracts import EvaluatedModule, PublishesSummary, provides, require
from lt_imbalance.metrics import EvaluationResult, head_tail_halves, shot_groups
from lt_imbalance.plotting import by_count

#: how many of the worst classes the table names
WORST_SHOWN = 3
#: (metric key, label, class group it averages over; None = all classes)
SUMMARY_ROWS = (
    ("acc", "top-1 accuracy", None),
    ("balanced_acc", "balanced accuracy", None),
    ("macro_f1", "macro-F1", None),
    ("many_acc", "many-shot (>100)", "many"),
    ("medium_acc", "medium-shot (20-100)", "medium"),
    ("few_acc", "few-shot (<20)", "few"),
    ("head_acc", "head half", "head"),
    ("tail_acc", "tail half", "tail"),
    ("auroc", "AUROC (one-vs-rest, macro)", None),
    ("ece_uncalibrated", "ECE (15 bins), before calibration", None),
    ("ece", "ECE (15 bins)", None),
    ("nll_uncalibrated", "NLL, before calibration", None),
    ("nll", "NLL", None),
    ("temperature", "temperature T (fitted on the validation split)", None),
    ("gap_acc", "train - val accuracy gap", None),
    ("gap_acc_few", "train - val accuracy gap, few-shot", "few"),
)


#: rows that are not percentages, and how they print
NOT_PERCENT = {"nll": "{:.3f} nats", "nll_uncalibrated": "{:.3f} nats", "temperature": "{:.3f}"}


def _pct(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{100 * value:.2f}"


def _cell(key: str, value: float) -> str:
    if key in NOT_PERCENT and value is not None and not math.isnan(value):
        return NOT_PERCENT[key].format(value)
    return _pct(value)


def format_results_table(
    title: str,
    metrics: dict[str, float],
    per_class_acc: Sequence[float],
    class_counts: Sequence[int] | None,
    class_names: Sequence[str] | None = None,
    eval_counts: Sequence[int] | None = None,
    unit: str = "images",
) -> str:
    """Markdown: summary metrics (%, with the number of classes per group), then one row per class,
    most training samples first, then the worst classes by name; ``unit`` names what a sample is
    (``images``, ``rows``)."""
    names = list(class_names) if class_names else [str(c) for c in range(len(per_class_acc))]
    groups = {**shot_groups(class_counts), **head_tail_halves(class_counts)} if class_counts else {}
    evaluated = {c for c in range(len(per_class_acc)) if eval_counts is None or eval_counts[c] > 0}
    lines = [f"### {title}", "", "| metric | % | classes |", "|---|---:|---:|"]
    for key, label, group in SUMMARY_ROWS:
        if key in metrics:
            n = len(evaluated.intersection(groups[group] if group else range(len(per_class_acc))))
            lines.append(f"| {label} | {_cell(key, metrics[key])} | {n} |")
    missing = [names[c] for c in range(len(per_class_acc)) if c not in evaluated]
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        lines += [
            "",
            f"**{len(missing)} of {len(per_class_acc)} classes have no evaluation {unit}** ({shown}): every average above "
            f"is over the {len(evaluated)} classes that have some; the classes column says how many.",
        ]
    lines += ["", f"| class | train {unit} | eval {unit} | accuracy % |", "|---|---:|---:|---:|"]
    order = by_count(class_counts) if class_counts else range(len(per_class_acc))
    for c in order:
        train_n = class_counts[c] if class_counts else "?"
        eval_n = eval_counts[c] if eval_counts else "?"
        lines.append(f"| {names[c]} | {train_n} | {eval_n} | {_pct(per_class_acc[c])} |")
    scored = sorted((c for c, a in enumerate(per_class_acc) if not math.isnan(a)), key=lambda c: per_class_acc[c])
    worst = [f"{names[c]} ({_pct(per_class_acc[c])}%)" for c in scored[: min(WORST_SHOWN, len(scored))]]
    if worst:
        lines += ["", f"Worst classes: {', '.join(worst)}."]
    return "\n".join(lines)


class ResultsTable(WritesRunFiles):
    """Prints the table of the last validation epoch when ``fit`` ends, of the validation split when
    ``validate`` ends and of the test set when ``test`` ends (rank 0), and saves it with per-class
    accuracy and the confusion matrix."""

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        require(pl_module, EvaluatedModule, "ResultsTable", "ImbalancedClassifier")

    def _report(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        log_dir = self.run_dir
        result: EvaluationResult | None = pl_module.evaluations.get(stage)
        if result is None or not trainer.is_global_zero:
            return
        metrics = dict(result.metrics)
        for callback in trainer.callbacks:
            if provides(callback, PublishesSummary):
                metrics.update(callback.summary(stage))
        dm = trainer.datamodule
        unit = getattr(dm, "sample_unit", "samples")
        eval_counts = result.eval_counts
        where = "validation split" if stage == "val" else "test set"
        balance = "balanced" if len(set(eval_counts)) == 1 else "imbalanced" if all(eval_counts) else "classes missing"
        title = f"{type(pl_module).__name__} on {type(dm).__name__ if dm else 'data'}: {where} ({balance}, {sum(eval_counts)} {unit})"
        names = getattr(dm, "class_names", None)
        table = format_results_table(title, metrics, result.per_class_acc, result.class_counts, names, eval_counts, unit)
        rank_zero_info("\n" + table + "\n")
        save_results(trainer, log_dir, f"results_{stage}", table, {**result.to_json(), "metrics": metrics})

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._report(trainer, pl_module, "val")

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.state.fn == "validate":  # `lt-imbalance validate`: the table instead of Lightning's metrics box
            self._report(trainer, pl_module, "val")

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._report(trainer, pl_module, "test")
