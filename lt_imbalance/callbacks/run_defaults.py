"""The callbacks a run gets by default (:meth:`ImbalancedClassifier.configure_callbacks`), so that a
run from Python writes and resumes as the ``lt-imbalance`` command does.

A callback of a kind the trainer already has is kept and nothing is added for it. A checkpoint
callback configured as Lightning's default (the one ``Trainer`` adds itself) also writes
``last.ckpt``; one configured by the user is kept as it is, with ``last.ckpt`` written beside it by
one more callback where the two do not clash (Lightning keeps one callback per state key).
"""

from __future__ import annotations

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_warn

from lt_imbalance.callbacks.calibrate_after_fit import CalibrateAfterFit
from lt_imbalance.callbacks.checkpoint_on_interrupt import CheckpointOnInterrupt
from lt_imbalance.callbacks.checkpoints_in_run_folder import CheckpointsInRunFolder
from lt_imbalance.callbacks.per_class_plots import PerClassPlots
from lt_imbalance.callbacks.results_table import ResultsTable
from lt_imbalance.callbacks.rng_state import RNGState
from lt_imbalance.callbacks.run_metadata import RunMetadata
from lt_imbalance.callbacks.target_prior_report import TargetPriorReport


def configured_as_default(checkpoint: ModelCheckpoint) -> bool:
    """Whether a ``ModelCheckpoint`` has the settings of the one ``Trainer`` adds by itself."""
    return (
        checkpoint.monitor is None
        and checkpoint.dirpath is None
        and checkpoint.filename is None
        and checkpoint.save_top_k == 1
        and not checkpoint.save_weights_only
    )


def run_default_callbacks(trainer: pl.Trainer) -> list[pl.Callback]:
    """The run defaults the trainer lacks (module docstring), to return from ``configure_callbacks``."""
    present = trainer.callbacks
    run_callbacks = (
        CalibrateAfterFit(),  # before the results table, which prints its ECE and NLL
        ResultsTable(),
        TargetPriorReport(),
        PerClassPlots(),
        RunMetadata(),
        RNGState(),
        CheckpointOnInterrupt(),
        CheckpointsInRunFolder(),
    )
    added = [cb for cb in run_callbacks if not any(isinstance(c, type(cb)) for c in present)]
    checkpoints = [c for c in present if isinstance(c, ModelCheckpoint)]
    if not checkpoints or any(c.save_last for c in checkpoints):
        return added
    defaults = [c for c in checkpoints if configured_as_default(c)]
    if defaults:
        defaults[0].save_last = True  # the trainer's own default checkpoint, now also resumable
        return added
    last = ModelCheckpoint(save_last=True, save_top_k=0)
    if any(c.state_key == last.state_key for c in checkpoints):  # Lightning keeps one callback per state key
        rank_zero_warn("no last.ckpt is written: set save_last=True on your ModelCheckpoint for an exactly resumable run")
        return added
    return [*added, last, *checkpoints]  # returned again, the trainer's own checkpoints survive Lightning's same-type replacement
