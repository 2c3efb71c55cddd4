"""A NaN / inf loss stops the run naming the step and the last checkpoint, or skips the step and
leaves the weights and every buffer (BatchNorm statistics) as they were."""

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from helpers import CONSTANT, COUNTS, TinyNet, quiet_trainer, sgd, tensors
from lt_imbalance import ImbalancedClassifier
from lt_imbalance.callbacks import SAM


def _data(nan_rows=()):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(18, 5, generator=g), torch.tensor([0, 0, 1, 2, 0, 1] * 3)
    for i in nan_rows:
        x[i] = float("nan")
    return DataLoader(TensorDataset(x, y), batch_size=6)


def _model(batchnorm=False, **kw):
    torch.manual_seed(0)
    return ImbalancedClassifier(TinyNet(batchnorm), class_counts=COUNTS, optimizer=sgd(0.1, momentum=0.9), lr_schedule=CONSTANT, **kw)


def _trainer(tmp_path, epochs=1, callbacks=(), checkpoint=False):
    if checkpoint:
        return pl.Trainer(
            max_epochs=epochs,
            callbacks=list(callbacks),
            logger=False,
            default_root_dir=tmp_path,
            enable_progress_bar=False,
            enable_model_summary=False,
            limit_val_batches=0,
        )
    return quiet_trainer(tmp_path, max_epochs=epochs, callbacks=list(callbacks), limit_val_batches=0)


def test_nan_stops_the_run_naming_the_step(tmp_path):
    with pytest.raises(
        FloatingPointError, match=r"loss is nan at global step 1 \(epoch 0, batch 1\); last good checkpoint: none written yet"
    ):
        _trainer(tmp_path).fit(_model(), train_dataloaders=_data(nan_rows=[7]))


def test_nan_message_names_the_last_checkpoint(tmp_path):
    model = _model()
    _trainer(tmp_path, checkpoint=True).fit(model, train_dataloaders=_data())
    with pytest.raises(FloatingPointError, match=r"last good checkpoint: .*epoch=0-step=3.ckpt"):
        trainer = _trainer(tmp_path, epochs=2, checkpoint=True)
        trainer.fit(model, train_dataloaders=_data(nan_rows=[13]), ckpt_path=str(next(tmp_path.rglob("*.ckpt"))))


@pytest.mark.parametrize("batchnorm", [False, True])
def test_skip_leaves_the_weights_and_buffers_untouched_for_that_step(tmp_path, batchnorm):
    skipped, clean = _model(batchnorm, on_nonfinite_loss="skip"), _model(batchnorm)
    _trainer(tmp_path).fit(skipped, train_dataloaders=_data(nan_rows=[12, 13]))  # batch 2 is bad
    _trainer(tmp_path).fit(clean, train_dataloaders=DataLoader(TensorDataset(*_data().dataset[:12]), batch_size=6))
    for (name, p), q in zip(tensors(skipped).items(), tensors(clean).values()):
        torch.testing.assert_close(p, q, msg=name)  # with BatchNorm: running statistics finite and equal to the clean run's
    if batchnorm:
        assert torch.isfinite(skipped.net.backbone.bn.running_mean).all()


class NaNAtPerturbedWeights(ImbalancedClassifier):
    """The loss is finite in the ascent pass and NaN in SAM's descent pass."""

    def compute_loss(self, logits, targets):
        self.calls = getattr(self, "calls", 0) + 1
        loss = super().compute_loss(logits, targets)
        return loss * float("nan") if self.calls % 2 == 0 else loss


@pytest.mark.parametrize("mode", ["stop", "skip"])
def test_nonfinite_sam_descent_pass(tmp_path, mode):
    torch.manual_seed(0)
    model = NaNAtPerturbedWeights(
        TinyNet(), class_counts=COUNTS, optimizer=sgd(0.1, momentum=0.9), lr_schedule=CONSTANT, on_nonfinite_loss=mode
    )
    before = [p.detach().clone() for p in model.parameters()]
    if mode == "stop":
        with pytest.raises(FloatingPointError, match="global step 0"):
            _trainer(tmp_path, callbacks=[SAM(rho=0.1)]).fit(model, train_dataloaders=_data())
        return
    _trainer(tmp_path, callbacks=[SAM(rho=0.1)]).fit(model, train_dataloaders=_data())
    for p, q in zip(model.parameters(), before):
        torch.testing.assert_close(p.detach(), q)  # every step skipped, weights restored exactly
