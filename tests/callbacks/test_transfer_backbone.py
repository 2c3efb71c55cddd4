"""Two-stage training: stage 2 loads and freezes the stage-1 backbone, re-trains a fresh head with
class-balanced sampling; mismatches and a frozen random backbone are reported."""

from pathlib import Path

import pytest
import torch

from helpers import tiny_model
from lt_imbalance.callbacks import TransferBackbone
from lt_imbalance.commands.lightning_cli import build_cli

ROOT = Path(__file__).resolve().parents[2]


def _stage_two(tmp_path, checkpoint, *overrides):
    return build_cli(
        ["fit", "--config", "configs/two_stage/digits_crt.yaml", "--trainer.callbacks.checkpoint", str(checkpoint),
         "--trainer.max_epochs", "2", "--trainer.limit_train_batches", "3", "--trainer.limit_val_batches", "1",
         "--trainer.limit_test_batches", "1", "--trainer.default_root_dir", str(tmp_path), *overrides]
    )  # fmt: skip


def test_stage_two_keeps_the_stage_one_backbone_and_retrains_the_head(tmp_path, monkeypatch, digits_checkpoint):
    monkeypatch.chdir(ROOT)
    stage_one = torch.load(digits_checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    cli = _stage_two(tmp_path, digits_checkpoint.parents[1])  # a run folder works as well as the file
    after = cli.model.state_dict()
    backbone = [k for k in after if k.startswith("net.backbone.")]
    assert any("running_mean" in k for k in backbone)  # BatchNorm statistics are among them
    for key in backbone:  # weights and BatchNorm statistics: exactly stage 1's
        assert torch.equal(after[key], stage_one[key]), key
    assert not torch.allclose(after["net.head.weight"], stage_one["net.head.weight"])  # a fresh head, trained
    assert cli.trainer.global_step == 6
    trained = {id(p) for group in cli.trainer.optimizers[0].param_groups for p in group["params"]}
    assert trained == {id(p) for p in cli.model.net.head.parameters()}  # only the head is optimised
    assert cli.datamodule.train_dataloader().sampler.mode == "class_balanced"


def test_a_backbone_that_does_not_fit_is_named(tmp_path, monkeypatch, digits_checkpoint):
    monkeypatch.chdir(ROOT)
    with pytest.raises(ValueError, match="does not fit this model's backbone.*use the same backbone"):
        _stage_two(tmp_path, digits_checkpoint, "--model.init_args.backbone", "mlp")


def test_missing_stage_one_run_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no last.ckpt under .*train that run first"):
        _stage_two(tmp_path / "run", tmp_path / "empty")


def test_freezing_a_random_backbone_warns_and_trains_only_the_head():
    model = tiny_model(batchnorm=True)
    callback = TransferBackbone(checkpoint=None, freeze_backbone=True)
    with pytest.warns(UserWarning, match="neither loaded from a checkpoint nor pretrained"):
        callback.setup(None, model, "fit")
    assert not any(p.requires_grad for p in model.net.backbone.parameters())
    assert all(p.requires_grad for p in model.net.head.parameters())
