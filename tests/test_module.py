import math

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lt_imbalance import ImbalancedClassifier
from lt_imbalance.data import DigitsLT
from lt_imbalance.models import build_backbone
from lt_imbalance.optim import lr_factor


def test_resnet32_has_the_published_size():
    model = ImbalancedClassifier("resnet32", class_counts=[10] * 10)
    n = sum(p.numel() for p in model.parameters())
    assert 0.45e6 < n < 0.47e6  # He et al. 2016: 0.46M


@pytest.mark.parametrize(("name", "kwargs"), [("wideresnet28", {"width": 1}), ("resnet18", {"small_image_stem": True}), ("resnet50", {})])
def test_other_backbones_build_and_run(name, kwargs):
    model = ImbalancedClassifier(name, backbone_kwargs=kwargs, class_counts=[5, 3, 1])
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 3)


def test_unknown_backbone_lists_known_names():
    with pytest.raises(ValueError, match=r"unknown backbone 'resnet33'; choose one of .*resnet32.*class_path"):
        build_backbone("resnet33")


def test_num_classes_disagreeing_with_data_is_refused():
    with pytest.raises(ValueError, match="model.num_classes=5 disagrees with the data, which has 3 classes"):
        ImbalancedClassifier("digits_cnn", class_counts=[4, 2, 1], num_classes=5, in_channels=1)
    with pytest.raises(ValueError, match=r"classes \[1\] have no training samples"):
        ImbalancedClassifier("digits_cnn", class_counts=[4, 0, 1], in_channels=1)


def test_backbone_without_feature_width_gets_a_clear_error():
    with pytest.raises(ValueError, match="give it an integer `out_features` attribute"):
        ImbalancedClassifier(nn.Sequential(nn.Flatten(), nn.Linear(64, 8)), class_counts=[3, 2])


def test_lr_factor_closed_form():
    assert lr_factor(0, 4, 100) == pytest.approx(0.25)
    assert lr_factor(3, 4, 100) == pytest.approx(1.0)
    assert lr_factor(4, 4, 100) == pytest.approx(1.0)
    assert lr_factor(52, 4, 100) == pytest.approx(0.5 * (1 + math.cos(math.pi * 48 / 96)))
    assert lr_factor(100, 4, 100, min_ratio=0.1) == pytest.approx(0.1)
    assert lr_factor(60, 4, 100, "constant") == 1.0


class _RecordLR(pl.Callback):
    def __init__(self):
        self.lrs = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])


def _trainer(tmp_path, **kw):
    kw.setdefault("max_epochs", 2)
    return pl.Trainer(default_root_dir=tmp_path, logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, **kw)


def test_learning_rate_follows_warmup_and_cosine_per_step(tmp_path):
    dm = DigitsLT(batch_size=64)
    model = ImbalancedClassifier("digits_cnn", class_counts=dm.class_counts, in_channels=1, lr=0.2, warmup_epochs=1)
    rec = _RecordLR()
    _trainer(tmp_path, max_epochs=3, callbacks=[rec], limit_val_batches=0).fit(model, dm)
    steps = len(rec.lrs)
    per_epoch = steps // 3
    expected = [0.2 * lr_factor(s, per_epoch, steps) for s in range(steps)]
    assert rec.lrs == pytest.approx(expected)
    assert rec.lrs[0] < rec.lrs[per_epoch - 1] and rec.lrs[-1] < 0.2 * 0.2


class FocalLikeClassifier(ImbalancedClassifier):
    """A subclass that changes only the loss (the extension surface the issue asks for)."""

    def per_sample_loss(self, logits, targets):
        ce = F.cross_entropy(logits, targets, reduction="none")
        return (1 - torch.exp(-ce)) ** 2 * ce


def test_subclass_changes_the_loss_without_copying_the_class(tmp_path):
    dm = DigitsLT(batch_size=64)
    model = FocalLikeClassifier("digits_cnn", class_counts=dm.class_counts, in_channels=1, lr=0.05)
    x = torch.randn(4, 1, 8, 8)
    y = torch.tensor([0, 1, 2, 3])
    logits = model(x)
    ce = F.cross_entropy(logits, y, reduction="none")
    assert torch.allclose(model.compute_loss(logits, y), ((1 - torch.exp(-ce)) ** 2 * ce).mean())
    _trainer(tmp_path, max_epochs=5).fit(model, dm)
    assert model.results["val"]["metrics"]["balanced_acc"] > 0.3  # it trains (chance: 0.1)


def test_joint_ssl_objective_and_logs(tmp_path):
    dm = DigitsLT(batch_size=32, ssl_views=True)
    model = ImbalancedClassifier("digits_cnn", class_counts=dm.class_counts, in_channels=1, ssl_weight=0.5)
    dm.setup("fit")
    batch = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    model.train()
    out = model.forward_loss(batch)
    assert out["loss"].item() == pytest.approx(out["loss_sup"].item() + 0.5 * out["loss_ssl"].item(), rel=1e-6)
    z1, z2 = model.projector(model.backbone(torch.cat([batch[2], batch[3]]))).chunk(2)
    # the projection head is in train mode (BatchNorm): recompute in the same mode for the closed form
    assert out["loss_ssl"].item() == pytest.approx(model.ssl_loss(z1, z2).item(), rel=1e-5)
    trainer = _trainer(tmp_path, max_epochs=1, limit_train_batches=2, limit_val_batches=1)
    trainer.fit(model, dm)
    assert {"train/loss_sup_epoch", "train/loss_ssl_epoch"} <= set(trainer.logged_metrics)


def test_joint_ssl_without_views_says_how_to_fix_it():
    model = ImbalancedClassifier("digits_cnn", class_counts=[5, 5], in_channels=1, ssl_weight=0.5)
    with pytest.raises(ValueError, match="set data.init_args.ssl_views: true"):
        model.forward_loss((torch.randn(2, 1, 8, 8), torch.tensor([0, 1])))
