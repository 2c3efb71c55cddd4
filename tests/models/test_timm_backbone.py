"""timm models as backbones: by name through the command, pretrained weights from a local file and
the data normalised with their statistics (nothing is downloaded)."""

import json
from pathlib import Path

import pytest
import timm
import torch

from lt_imbalance.commands.lightning_cli import build_cli
from lt_imbalance.models import TimmBackbone, build_backbone

ROOT = Path(__file__).resolve().parents[2]


def _fit(tmp_path, *overrides):
    return build_cli(
        ["fit", "--config", "configs/digits_lt_erm.yaml", "--trainer.max_steps", "3", "--trainer.limit_val_batches", "1",
         "--trainer.limit_test_batches", "1", "--trainer.default_root_dir", str(tmp_path), *overrides]
    )  # fmt: skip


def test_a_timm_model_by_name_trains_through_the_command(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    cli = _fit(tmp_path, "--model.init_args.backbone", "timm/resnet18")
    backbone = cli.model.net.backbone
    assert isinstance(backbone, TimmBackbone) and backbone.out_features == 512 and cli.trainer.global_step == 3
    assert backbone.model.conv1.in_channels == 1  # sized from the grey 8x8 digits
    assert cli.datamodule.normalisation == "training images"  # not pretrained: the data's own statistics


def test_pretrained_weights_from_a_file_and_their_statistics_normalise_the_data(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    torch.manual_seed(1)
    published = timm.create_model("resnet18")
    weights = tmp_path / "resnet18.pth"
    torch.save(published.state_dict(), weights)
    cli = _fit(
        tmp_path / "run", "--model.init_args.backbone", "timm/resnet18",
        "--model.init_args.backbone_kwargs", json.dumps({"pretrained": True, "pretrained_file": str(weights)}),
        "--trainer.max_steps", "0",
    )  # fmt: skip
    model = cli.model.net.backbone.model
    assert torch.equal(model.layer4[1].conv2.weight, published.layer4[1].conv2.weight)
    assert torch.allclose(model.conv1.weight, published.conv1.weight.sum(dim=1, keepdim=True))  # timm's RGB -> grey
    mean, std = timm.get_pretrained_cfg("resnet18").mean, timm.get_pretrained_cfg("resnet18").std
    assert cli.datamodule.mean == pytest.approx((sum(mean) / 3,)) and cli.datamodule.std == pytest.approx((sum(std) / 3,))
    meta = json.loads((Path(cli.trainer.log_dir) / "run_metadata.json").read_text())
    assert meta["data"]["normalisation"] == "pretrained backbone" and meta["data"]["mean"] == pytest.approx([sum(mean) / 3])


def test_given_statistics_win_over_the_pretrained_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    weights = tmp_path / "w.pth"
    torch.save(timm.create_model("resnet18").state_dict(), weights)
    cli = _fit(
        tmp_path / "run", "--model.init_args.backbone", "timm/resnet18",
        "--model.init_args.backbone_kwargs", json.dumps({"pretrained": True, "pretrained_file": str(weights)}),
        "--data.init_args.mean", "[0.5]", "--data.init_args.std", "[0.25]", "--trainer.max_steps", "0",
    )  # fmt: skip
    assert cli.model.input_statistics is not None
    assert cli.datamodule.mean == (0.5,) and cli.datamodule.std == (0.25,) and cli.datamodule.normalisation == "given"


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("resnet18x", {}, "timm has no model 'resnet18x'; similar names:"),
        ("resnet18", {"pretrained_file": "w.pth"}, "only read with pretrained: true"),
    ],
)
def test_bad_timm_arguments_are_named(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_backbone(f"timm/{name}", (3, 32, 32), **kwargs)


def test_timm_backbones_need_images():
    with pytest.raises(ValueError, match="timm backbones take images"):
        build_backbone("timm/resnet18", (12,))


def test_pretrained_without_a_network_fails_at_once_naming_pretrained_file(tmp_path, monkeypatch):
    """No cached copy and no reachable source: an error that names the fix, not a minute of retries."""
    import huggingface_hub.constants

    from lt_imbalance.errors import MissingFile
    from lt_imbalance.models import timm_backbone

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torch_hub"))
    asked = []
    monkeypatch.setattr(timm_backbone, "_reachable", lambda host, timeout_s=3.0: asked.append(host) and False)
    with pytest.raises(MissingFile, match="cannot be reached from this machine.*backbone_kwargs.pretrained_file"):
        TimmBackbone("resnet18", pretrained=True)
    assert asked == ["huggingface.co", "github.com"]
    cfg = timm.get_pretrained_cfg("resnet18")
    cached = tmp_path / "torch_hub" / "checkpoints" / cfg.url.rsplit("/", 1)[1]
    cached.parent.mkdir(parents=True)
    cached.touch()
    timm_backbone._check_weights_obtainable(timm, "resnet18")  # a cached copy: no network needed, no error
