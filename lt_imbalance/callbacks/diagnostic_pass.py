"""The shared part of the diagnostics callbacks: an evaluation pass over a dataset outside the
trainer's loops, and the fixed training subset they measure on."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Dataset

from lt_imbalance.callbacks.run_files import WritesRunFiles
from lt_imbalance.contracts import DiagnosableData, DiagnosableModule, require
from lt_imbalance.errors import BrokenContract


@torch.no_grad()
def evaluate(
    pl_module: pl.LightningModule, data: DiagnosableData, dataset: Dataset | DataLoader, batch_size: int = 256
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logits, targets)`` of ``dataset`` (or of the batches of a loader, e.g. the data module's
    validation loader with its workers) in eval mode, batches turned into inputs by the data module."""
    was_training = pl_module.training
    pl_module.eval()
    logits, targets = [], []
    loader = dataset if isinstance(dataset, DataLoader) else DataLoader(dataset, batch_size=batch_size, shuffle=False)
    try:
        for batch in loader:
            batch = data.on_after_batch_transfer(tuple(t.to(pl_module.device) for t in batch), 0)
            logits.append(pl_module(batch[0]).float().cpu())
            targets.append(batch[1].cpu())
    finally:
        pl_module.train(was_training)
    return torch.cat(logits), torch.cat(targets)


class DiagnosticCallback(WritesRunFiles):
    """Base of the diagnostics: measures on a fixed, un-augmented training subset (at most
    ``max_per_class`` images per class, chosen with ``seed``) and the validation split; ``last``
    holds the latest measurement.

    Args:
        max_per_class: size cap of the fixed training subset per class.
        every_n_epochs: how often to measure.
        seed: seed of the fixed subset.
    """

    def __init__(self, max_per_class: int = 100, every_n_epochs: int = 1, seed: int = 0):
        self.max_per_class, self.every_n_epochs, self.seed = max_per_class, every_n_epochs, seed
        self._train_subset: Dataset | None = None
        self.last: dict = {}

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        name = type(self).__name__
        require(pl_module, DiagnosableModule, name, "ImbalancedClassifier")
        if trainer.datamodule is None:
            raise BrokenContract(f"{name} needs a data module (trainer.fit(model, datamodule=...)); every LongTailedDataModule works")
        require(trainer.datamodule, DiagnosableData, name, "every LongTailedDataModule")

    def due(self, trainer: pl.Trainer) -> bool:
        return not trainer.sanity_checking and (trainer.current_epoch + 1) % self.every_n_epochs == 0

    def splits(self, trainer: pl.Trainer) -> dict[str, Dataset]:
        data = trainer.datamodule
        if self._train_subset is None:
            self._train_subset = data.train_eval_dataset(self.max_per_class, self.seed)
        return {"train": self._train_subset, "val": data.val_set}
