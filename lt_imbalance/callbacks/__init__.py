"""Lightning callbacks: per-class figures, the results table and run metadata."""

from lt_imbalance.callbacks.metadata import RunMetadata
from lt_imbalance.callbacks.plots import PerClassPlots
from lt_imbalance.callbacks.results import ResultsTable

__all__ = ["PerClassPlots", "ResultsTable", "RunMetadata"]
