"""Lightning callbacks: SAM / SAM-A, the label-smoothing schedule, per-class figures, the results
table, run metadata, and the overfitting / margin diagnostics."""

from lt_imbalance.callbacks.diagnostics import MarginStatistics, OverfittingMonitor
from lt_imbalance.callbacks.label_smoothing import LabelSmoothingSchedule
from lt_imbalance.callbacks.metadata import RunMetadata
from lt_imbalance.callbacks.plots import PerClassPlots
from lt_imbalance.callbacks.results import ResultsTable
from lt_imbalance.callbacks.rng import RNGState
from lt_imbalance.callbacks.sam import SAM

__all__ = ["SAM", "LabelSmoothingSchedule", "MarginStatistics", "OverfittingMonitor", "PerClassPlots", "RNGState", "ResultsTable", "RunMetadata"]
