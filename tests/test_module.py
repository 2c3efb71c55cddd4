"""ImbalancedClassifier: construction, the configure_* hooks, the objective through the module."""

import inspect
import math
from types import SimpleNamespace

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers import quiet_trainer, sgd, tiny_batch, tiny_model
from lt_imbalance import ImbalancedClassifier
from lt_imbalance.data import DigitsLT
from lt_imbalance.losses import CrossEntropy, Reweighting, class_weights, log_prior
from lt_imbalance.training.optimization import LRSchedule, lr_factor

COUNTS = [100, 10, 1]


def _model(**kw):
    torch.manual_seed(0)
    return ImbalancedClassifier("digits_cnn", class_counts=COUNTS, input_shape=(1, 8, 8), **kw)


def _data():
    g = torch.Generator().manual_seed(0)
    return torch.randn(6, 3, generator=g), torch.tensor([0, 1, 2, 0, 0, 1])


def test_constructor_takes_at_most_fifteen_arguments():
    assert len(inspect.signature(ImbalancedClassifier.__init__).parameters) - 1 <= 15


def test_resnet32_has_the_published_size():
    model = ImbalancedClassifier("resnet32", class_counts=[10] * 10)
    n = sum(p.numel() for p in model.parameters())
    assert 0.45e6 < n < 0.47e6  # He et al. 2016: 0.46M


@pytest.mark.parametrize(("name", "kwargs"), [("wideresnet28", {"width": 1}), ("resnet18", {"small_image_stem": True}), ("resnet50", {})])
def test_other_backbones_build_and_run(name, kwargs):
    model = ImbalancedClassifier(name, backbone_kwargs=kwargs, class_counts=[5, 3, 1])
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 3)


def test_num_classes_disagreeing_with_data_is_refused():
    with pytest.raises(ValueError, match="model.num_classes=5 disagrees with the data, which has 3 classes"):
        ImbalancedClassifier("digits_cnn", class_counts=[4, 2, 1], num_classes=5, input_shape=(1, 8, 8))
    with pytest.raises(ValueError, match=r"classes \[1\] have no training samples"):
        ImbalancedClassifier("digits_cnn", class_counts=[4, 0, 1], input_shape=(1, 8, 8))
    with pytest.raises(ValueError, match="a classifier needs at least two classes"):
        ImbalancedClassifier("digits_cnn", class_counts=[4], input_shape=(1, 8, 8))


def test_backbone_without_feature_width_gets_a_clear_error():
    with pytest.raises(ValueError, match="give it an integer `out_features` attribute"):
        ImbalancedClassifier(nn.Sequential(nn.Flatten(), nn.Linear(64, 8)), class_counts=[3, 2])


class _RecordLR(pl.Callback):
    def __init__(self):
        self.lrs = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])


def test_learning_rate_follows_warmup_and_cosine_per_step(tmp_path):
    dm = DigitsLT(batch_size=64)
    model = ImbalancedClassifier(
        "digits_cnn", class_counts=dm.class_counts, input_shape=(1, 8, 8), optimizer=sgd(0.2), lr_schedule=LRSchedule(warmup_epochs=1)
    )
    rec = _RecordLR()
    quiet_trainer(tmp_path, max_epochs=3, callbacks=[rec], limit_val_batches=0).fit(model, dm)
    steps = len(rec.lrs)
    per_epoch = steps // 3
    expected = [0.2 * lr_factor(s, per_epoch, steps) for s in range(steps)]
    assert rec.lrs == pytest.approx(expected)
    assert rec.lrs[0] < rec.lrs[per_epoch - 1] and rec.lrs[-1] < 0.2 * 0.2


def test_default_optimizer_is_sgd_of_the_cifar_lt_protocol():
    model = _model()
    model.trainer = SimpleNamespace(estimated_stepping_batches=10, max_epochs=1)
    optimizer = model.configure_optimizers()["optimizer"]
    assert isinstance(optimizer, torch.optim.SGD)
    assert {k: optimizer.defaults[k] for k in ("lr", "momentum", "weight_decay")} == {"lr": 0.1, "momentum": 0.9, "weight_decay": 2e-4}


class FocalLikeLoss(CrossEntropy):
    def forward(self, logits, targets):
        ce = super().forward(logits, targets)
        return (1 - torch.exp(-ce)) ** 2 * ce


class FocalLikeClassifier(ImbalancedClassifier):
    """A subclass that changes only the loss hook."""

    def configure_loss(self):
        return FocalLikeLoss(self.class_counts)


def test_subclass_changes_one_configure_hook(tmp_path):
    dm = DigitsLT(batch_size=64)
    model = FocalLikeClassifier("digits_cnn", class_counts=dm.class_counts, input_shape=dm.input_shape, optimizer=sgd(0.05))
    x, y = torch.randn(4, 1, 8, 8), torch.tensor([0, 1, 2, 3])
    logits = model(x)
    ce = F.cross_entropy(logits, y, reduction="none")
    assert torch.allclose(model.compute_loss(logits, y), ((1 - torch.exp(-ce)) ** 2 * ce).mean())
    quiet_trainer(tmp_path, max_epochs=5).fit(model, dm)
    assert model.evaluations["val"].metrics["balanced_acc"] > 0.3  # it trains (chance: 0.1)


class WideHeadClassifier(ImbalancedClassifier):
    def configure_head(self, in_features):
        return nn.Sequential(nn.Linear(in_features, 32), nn.ReLU(), nn.Linear(32, self.num_classes))


def test_subclass_changes_the_head():
    model = WideHeadClassifier("digits_cnn", class_counts=COUNTS, input_shape=(1, 8, 8))
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 3) and isinstance(model.net.head, nn.Sequential)


def test_cosine_head_for_ldam():
    model = _model(head="cosine", loss="ldam")
    assert model(torch.randn(4, 1, 8, 8)).abs().max() <= 1 + 1e-5


def test_reweighting_through_the_module_equals_torch_weighted_cross_entropy():
    logits, y = _data()
    model = _model(reweighting=Reweighting("inverse"))
    expected = F.cross_entropy(logits, y, weight=class_weights(COUNTS, "inverse"))
    assert model.compute_loss(logits, y).item() == pytest.approx(expected.item(), rel=1e-6)


def test_deferred_reweighting_switches_on_at_the_chosen_epoch():
    logits, y = _data()
    model = _model(reweighting=Reweighting("effective", start_epoch=3))
    assert model.compute_loss(logits, y).item() == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-6)
    model.trainer = SimpleNamespace(current_epoch=2)  # what a Trainer exposes to the module
    assert model.compute_loss(logits, y).item() == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-6)
    model.trainer = SimpleNamespace(current_epoch=3)
    weighted = F.cross_entropy(logits, y, weight=class_weights(COUNTS, "effective"))
    assert model.compute_loss(logits, y).item() == pytest.approx(weighted.item(), rel=1e-6)


def test_posthoc_adjustment_changes_evaluation_logits_only():
    model = _model(posthoc_adjust_tau=1.0)
    logits = torch.zeros(1, 3)
    adjusted = model.outputs.evaluated(logits)
    assert adjusted.argmax().item() == 2  # equal logits: the rarest class wins after subtracting log prior
    assert torch.allclose(adjusted, -log_prior(COUNTS)[None])
    assert torch.equal(_model().outputs.evaluated(logits), logits)


def test_losses_that_need_counts_say_so():
    with pytest.raises(ValueError, match="LDAM needs class_counts"):
        ImbalancedClassifier("digits_cnn", num_classes=3, input_shape=(1, 8, 8), loss="ldam")
    with pytest.raises(ValueError, match="unknown loss 'cb'"):
        _model(loss="cb")
    with pytest.raises(ValueError, match="on_nonfinite_loss must be 'stop' or 'skip'"):
        _model(on_nonfinite_loss="ignore")


def test_lr_factor_is_used_for_the_constant_schedule():
    assert lr_factor(60, 4, 100, "constant") == 1.0 and math.isclose(lr_factor(0, 4, 100), 0.25)


def _callbacks_of(tmp_path, model, **trainer_kw) -> list:
    from torch.utils.data import DataLoader, TensorDataset

    x, y = tiny_batch(6)
    trainer = pl.Trainer(
        max_steps=1, default_root_dir=tmp_path, logger=False, enable_progress_bar=False, enable_model_summary=False, **trainer_kw
    )
    trainer.fit(model, train_dataloaders=DataLoader(TensorDataset(x, y), batch_size=6))
    return trainer.callbacks


def test_the_module_brings_its_run_defaults_and_keeps_the_users_callbacks(tmp_path):
    from lightning.pytorch.callbacks import ModelCheckpoint

    from lt_imbalance.callbacks import PerClassPlots, ResultsTable, RNGState, RunMetadata

    plain = _callbacks_of(tmp_path / "a", tiny_model())  # Trainer's own default checkpoint, now also writing last.ckpt
    kinds = {type(c) for c in plain}
    assert {ResultsTable, PerClassPlots, RunMetadata, RNGState} <= kinds
    assert [c.save_last for c in plain if isinstance(c, ModelCheckpoint)] == [True]
    assert list((tmp_path / "a").rglob("last.ckpt")) and list((tmp_path / "a").rglob("run_metadata.json"))

    mine = ModelCheckpoint(dirpath=tmp_path / "mine", monitor="train/loss", save_top_k=2)
    table = ResultsTable()
    kept = _callbacks_of(tmp_path / "b", tiny_model(), callbacks=[mine, table])
    assert mine in kept and table in kept and sum(isinstance(c, ResultsTable) for c in kept) == 1
    assert mine.save_last is None and any(isinstance(c, ModelCheckpoint) and c.save_last for c in kept if c is not mine)
    assert list((tmp_path / "mine").glob("*.ckpt")) and list((tmp_path / "b").rglob("last.ckpt"))

    off = tiny_model()
    off.run_defaults = False
    assert not {ResultsTable, RunMetadata, RNGState} & {type(c) for c in _callbacks_of(tmp_path / "c", off)}
    no_checkpoints = _callbacks_of(tmp_path / "d", tiny_model(), enable_checkpointing=False)
    assert not any(isinstance(c, ModelCheckpoint) for c in no_checkpoints) and not list((tmp_path / "d").rglob("*.ckpt"))
