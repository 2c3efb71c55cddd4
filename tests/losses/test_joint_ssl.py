"""The Joint-SSL term: NT-Xent over the projected features of two views, inside the module's objective."""

import pytest
import torch

from helpers import quiet_trainer
from lt_imbalance import ImbalancedClassifier
from lt_imbalance.data import DigitsLT
from lt_imbalance.losses import ContrastiveObjective, JointSSL


def test_objective_is_ntxent_of_the_projected_views():
    torch.manual_seed(0)
    objective = ContrastiveObjective(16, JointSSL(weight=0.1, temperature=0.5, projection_dim=8))
    h1, h2 = torch.randn(4, 16), torch.randn(4, 16)
    z1, z2 = objective.projector(torch.cat([h1, h2])).chunk(2)
    assert objective(h1, h2).item() == pytest.approx(objective.ntxent(z1, z2).item(), rel=1e-6)
    assert z1.shape == (4, 8)


def test_joint_ssl_objective_and_logs(tmp_path):
    dm = DigitsLT(batch_size=32, ssl_views=True)
    model = ImbalancedClassifier("digits_cnn", class_counts=dm.class_counts, input_shape=dm.input_shape, ssl=JointSSL(weight=0.5))
    dm.setup("fit")
    batch = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    model.train()
    out = model.forward_loss(batch)
    assert out["loss"].item() == pytest.approx(out["loss_sup"].item() + 0.5 * out["loss_ssl"].item(), rel=1e-6)
    h1, h2 = model.net.features(torch.cat([batch[2], batch[3]])).chunk(2)
    # the projection head is in train mode (BatchNorm): recompute in the same mode for the closed form
    assert out["loss_ssl"].item() == pytest.approx(model.ssl_objective(h1, h2).item(), rel=1e-5)
    trainer = quiet_trainer(tmp_path, max_epochs=1, limit_train_batches=2, limit_val_batches=1)
    trainer.fit(model, dm)
    assert {"train/loss_sup_epoch", "train/loss_ssl_epoch"} <= set(trainer.logged_metrics)


def test_joint_ssl_without_views_says_how_to_fix_it():
    model = ImbalancedClassifier("digits_cnn", class_counts=[5, 5], input_shape=(1, 8, 8), ssl=JointSSL(weight=0.5))
    with pytest.raises(ValueError, match="set data.init_args.ssl_views: true"):
        model.forward_loss((torch.randn(2, 1, 8, 8), torch.tensor([0, 1])))


def test_settings_are_checked():
    with pytest.raises(ValueError, match="ssl weight must be >= 0"):
        JointSSL(weight=-0.1)
    assert not JointSSL().enabled and JointSSL(weight=0.1).enabled
