"""The run's checkpoints inside the run's own folder, whatever the logger.

Lightning puts the checkpoints of a ``ModelCheckpoint`` without a ``dirpath`` under
``<logger save_dir or default_root_dir>/<logger name>/<version>/checkpoints``: for TensorBoard and
CSV that is the run's folder, but for MLflow it is ``<default_root_dir>/<experiment id>/<run id>/``,
for W&B ``<save_dir>/<project>/<run id>/`` and without a logger ``<default_root_dir>/checkpoints``,
apart from the results, figures and metadata of the run. This callback gives every such checkpoint
callback ``<run folder>/checkpoints`` (:func:`~lt_imbalance.rundir.run_directory`) before it
resolves its own; a ``dirpath`` the user set is kept.
"""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl

from lt_imbalance.callbacks.run_files import WritesRunFiles


class CheckpointsInRunFolder(WritesRunFiles):
    """Points checkpoint callbacks without a ``dirpath`` at ``<run folder>/checkpoints`` (module docstring).
    Lightning runs checkpoint callbacks after all others, so this ``setup`` comes first.

    Examples:
        >>> trainer = pl.Trainer(callbacks=[CheckpointsInRunFolder()])  # doctest: +SKIP
    """

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if stage != "fit" or not self.run_dir:
            return
        for checkpoint in trainer.checkpoint_callbacks:
            if checkpoint.dirpath is None:
                checkpoint.dirpath = str(Path(self.run_dir) / "checkpoints")
