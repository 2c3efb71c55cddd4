"""Sending a run's figures and result files to its loggers and to its own folder (rank 0 only).

Every file lands in :func:`~lt_imbalance.rundir.run_directory`; the loggers that keep files get a
copy: TensorBoard the figures, MLflow the figures and files as artifacts of the run, W&B the
figures as images and the files in the run's Files tab.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.loggers import MLFlowLogger, TensorBoardLogger, WandbLogger
from matplotlib.figure import Figure

from lt_imbalance.output_files import write_text
from lt_imbalance.plotting import save
from lt_imbalance.rundir import run_directory


class WritesRunFiles(pl.Callback):
    """Base of the callbacks that write into the run's folder.

    ``setup`` resolves the folder once per run on every rank (:func:`~lt_imbalance.rundir.run_directory`:
    rank 0 decides, the others receive it by broadcast, as Lightning's ``ModelCheckpoint.setup``
    resolves its ``dirpath``) and keeps it as :attr:`run_dir`; the hooks then write on rank 0 only,
    with no collective of their own. A subclass that overrides ``setup`` calls ``super().setup``.
    """

    run_dir: str | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self.run_dir = run_directory(trainer)


def log_figure(trainer: pl.Trainer, log_dir: str, fig: Figure, tag: str, filename: str) -> Path:
    """Save ``fig`` as ``<log_dir>/figures/<filename>`` and hand it to the loggers under ``tag``.
    Call on rank 0 only, with ``log_dir`` read by every rank beforehand (it is a collective)."""
    path = save(fig, Path(log_dir) / "figures" / filename)
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.experiment.add_figure(tag, fig, global_step=trainer.global_step, close=False)
        elif isinstance(logger, MLFlowLogger):
            logger.experiment.log_figure(logger.run_id, fig, f"figures/{filename}")
        elif isinstance(logger, WandbLogger):
            logger.log_image(key=tag, images=[str(path)], step=trainer.global_step)
    return path


def save_results(trainer: pl.Trainer, log_dir: str | None, name: str, table: str, record: dict[str, Any]) -> None:
    """``<log_dir>/<name>.md`` (a markdown table) and ``<name>.json`` (its record), handed to the
    loggers that keep files; nothing without a folder. Rank 0 only."""
    if not log_dir:
        return
    out = Path(log_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.md", out / f"{name}.json"]
    write_text(paths[0], table + "\n", "the results table")
    write_text(paths[1], json.dumps(record, indent=2) + "\n", "the results record")
    log_files(trainer, log_dir, paths)


def log_files(trainer: pl.Trainer, log_dir: str, paths: Iterable[Path]) -> None:
    """Hand files already written in ``log_dir`` to the loggers that keep files (MLflow, W&B),
    under the same relative paths. Rank 0 only."""
    for path in paths:
        relative = Path(path).relative_to(log_dir)
        for logger in trainer.loggers:
            if isinstance(logger, MLFlowLogger):
                folder = str(relative.parent) if relative.parent != Path(".") else None
                logger.experiment.log_artifact(logger.run_id, str(path), artifact_path=folder)
            elif isinstance(logger, WandbLogger):
                logger.experiment.save(str(path), base_path=log_dir, policy="now")
