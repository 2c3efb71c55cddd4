"""How long a recipe takes to train: seconds per training sample over a few batches.

``lt-imbalance tune`` runs each portfolio recipe for a handful of batches before the study starts
and adds this callback, so that a user sees what a recipe will cost relative to the base config
before spending the hours (the paper's routine, with batch 32, SAM-A and Joint-SSL, costs several
times ERM per epoch). The time of a batch is the interval between the ends of consecutive training
batches: loading, forward, backward, the optimiser step, SAM's second pass and Joint-SSL's views.
The first :data:`WARM_UP_BATCHES` batches are left out (lazy initialisation, autotuning). Per
sample, not per batch, so recipes with other batch sizes compare by the cost of an epoch.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import lightning.pytorch as pl

#: batches whose time is not counted (lazy initialisation, autotuning)
WARM_UP_BATCHES = 2


class BatchTimer(pl.Callback):
    """Write ``{"seconds_per_sample", "batches"}`` of the training batches after the warm-up to ``out``.

    Args:
        out: the JSON file to write when training ends.

    Examples:
        >>> trainer = pl.Trainer(fast_dev_run=6, callbacks=[BatchTimer("timing.json")])  # doctest: +SKIP
    """

    def __init__(self, out: str):
        self.out = Path(out)
        self.last: float | None = None
        self.seconds, self.samples, self.batches = 0.0, 0, 0

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx: int) -> None:
        now = time.perf_counter()
        if self.last is not None and batch_idx >= WARM_UP_BATCHES:
            self.seconds += now - self.last
            self.samples += len(batch[1])
            self.batches += 1
        self.last = now

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero and self.samples:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            self.out.write_text(json.dumps({"seconds_per_sample": self.seconds / self.samples, "batches": self.batches}))
