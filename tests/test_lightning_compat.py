"""The Lightning state read by lt_imbalance.lightning_compat: these fail loudly when a Lightning release moves it."""

import lightning.pytorch as pl

from helpers import fit_tiny, tiny_model
from lt_imbalance.lightning_compat import attached_trainer, batches_done_this_epoch


class _Record(pl.Callback):
    def __init__(self):
        self.done, self.attached = [], []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.done.append(trainer.fit_loop.epoch_loop.batch_progress.current.ready)
        self.attached.append(attached_trainer(pl_module) is trainer)


def test_loop_progress_and_attached_trainer():
    model = tiny_model()
    assert attached_trainer(model) is None
    record = _Record()
    trainer = fit_tiny(model, [record], steps=6, n=18, batch_size=6)  # 3 batches per epoch, 2 epochs
    assert record.done == [1, 2, 3, 1, 2, 3]  # batches of the current epoch processed so far
    assert all(record.attached)
    assert batches_done_this_epoch(trainer) == 0  # not mid-epoch once the run ended
