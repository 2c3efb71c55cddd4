"""Lightning callbacks (the plugins): SAM / SAM-A, the label-smoothing schedule, per-class figures,
the results table, calibration when fit ends, shifted test distributions and the target-prior report, run metadata, RNG state for exact resume, a checkpoint when fit is interrupted, backbone
transfer / freezing (two-stage training), and the overfitting / margin diagnostics. What each
needs from the module is declared in :mod:`lt_imbalance.contracts`."""

from lt_imbalance.callbacks.calibrate_after_fit import CalibrateAfterFit
from lt_imbalance.callbacks.checkpoint_on_interrupt import CheckpointOnInterrupt
from lt_imbalance.callbacks.checkpoints_in_run_folder import CheckpointsInRunFolder
from lt_imbalance.callbacks.margin_statistics import MarginStatistics
from lt_imbalance.callbacks.overfitting_monitor import OverfittingMonitor
from lt_imbalance.callbacks.per_class_plots import PerClassPlots
from lt_imbalance.callbacks.results_table import ResultsTable
from lt_imbalance.callbacks.rng_state import RNGState
from lt_imbalance.callbacks.run_metadata import RunMetadata
from lt_imbalance.callbacks.sam import SAM
from lt_imbalance.callbacks.shifted_test import ShiftedTestDistributions
from lt_imbalance.callbacks.smoothing_schedule import LabelSmoothingSchedule
from lt_imbalance.callbacks.target_prior_report import TargetPriorReport
from lt_imbalance.callbacks.transfer_backbone import TransferBackbone

__all__ = [
    "SAM",
    "CalibrateAfterFit",
    "CheckpointOnInterrupt",
    "CheckpointsInRunFolder",
    "LabelSmoothingSchedule",
    "MarginStatistics",
    "OverfittingMonitor",
    "PerClassPlots",
    "RNGState",
    "ResultsTable",
    "RunMetadata",
    "ShiftedTestDistributions",
    "TargetPriorReport",
    "TransferBackbone",
]
