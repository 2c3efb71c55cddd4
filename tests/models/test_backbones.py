"""Every named backbone builds for its inputs and runs a forward and backward pass (the config tests
swap the large ones for a tiny one, so each is checked here once)."""

import pytest
import torch

from lt_imbalance.models import BACKBONES, build_backbone
from lt_imbalance.models.backbones import VECTOR_BACKBONES


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_every_named_backbone_builds_and_trains_one_step(name):
    shape = (12,) if name in VECTOR_BACKBONES else (3, 32, 32)
    backbone = build_backbone(name, shape)
    x = torch.randn(2, *shape)
    features = backbone(x)
    assert features.shape == (2, backbone.out_features) and torch.isfinite(features).all()
    features.square().mean().backward()
    assert all(p.grad is not None for p in backbone.parameters() if p.requires_grad)
