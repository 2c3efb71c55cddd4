"""Run metadata written to ``<log_dir>/run_metadata.json`` when fitting or testing starts:
the data split (class counts, split hash, seeds), the global seed, the trainer settings, the
command line and package versions. The resolved config is ``config.yaml`` beside it (written by
LightningCLI)."""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_info

from lt_imbalance.callbacks.run_files import WritesRunFiles, log_files
from lt_imbalance.errors import FileInTheWay
from lt_imbalance.output_files import write_text
from lt_imbalance.rundir import next_free, resuming_from

PACKAGES = ("lt_imbalance", "torch", "torchvision", "lightning", "torchmetrics", "lightly", "jsonargparse", "numpy", "scikit-learn")


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


class RunMetadata(WritesRunFiles):
    """Writes ``run_metadata.json`` into the run directory (updated, with the stage appended, when the
    same run also tests) and never over a file it did not write; a run resumed into the same
    directory writes ``run_metadata_resume_<k>.json``."""

    filename = "run_metadata.json"

    def __init__(self):
        self._written: set[Path] = set()

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        log_dir = self.run_dir
        if not trainer.is_global_zero or not log_dir:
            return
        path = Path(log_dir) / self.filename
        if path.exists() and path not in self._written and resuming_from(trainer):
            path = next_free(path)  # a resumed run in the same directory (SLURM requeue) keeps the first record
        if path.exists() and path not in self._written and not trainer.fast_dev_run:  # a smoke test's folder is a throwaway
            raise FileInTheWay(
                f"{path} exists from another run; refusing to overwrite it. Choose a new log directory "
                "(e.g. drop a fixed trainer.logger.init_args.version) or move the old run away."
            )
        if not self._written:
            rank_zero_info(f"run folder: {log_dir}")
        dm = trainer.datamodule
        stages = json.loads(path.read_text())["stages"] + [stage] if path in self._written else [stage]
        record = {
            "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "stages": stages,
            "command": sys.argv,
            "resumed_from": resuming_from(trainer),
            "global_seed": os.environ.get("PL_GLOBAL_SEED"),
            "data": getattr(dm, "metadata", None),
            "model": {"class": type(pl_module).__qualname__, "class_counts": getattr(pl_module, "class_counts", None)},
            "trainer": {
                "precision": str(trainer.precision),
                "world_size": trainer.world_size,
                "num_nodes": trainer.num_nodes,
                "max_epochs": trainer.max_epochs,
                "max_steps": trainer.max_steps,
                "accumulate_grad_batches": trainer.accumulate_grad_batches,
                "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
            },
            "versions": package_versions(),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, json.dumps(record, indent=2) + "\n", "the run's metadata")
        self._written.add(path)
        log_files(trainer, log_dir, [path])
