"""The plain PyTorch models (no Lightning): backbones by name, classifier heads, the classifier network,
and a weighted ensemble of networks."""

from lt_imbalance.models.backbones import (
    BACKBONES,
    MLP,
    CifarResNet,
    DigitsCNN,
    ResidualMLP,
    TorchvisionResNet,
    WideResNet,
    build_backbone,
    feature_dim,
)
from lt_imbalance.models.ensemble import WeightedEnsemble
from lt_imbalance.models.heads import CosineClassifier, build_head
from lt_imbalance.models.network import ClassifierNetwork
from lt_imbalance.models.timm_backbone import TimmBackbone

__all__ = [
    "BACKBONES",
    "MLP",
    "CifarResNet",
    "ClassifierNetwork",
    "CosineClassifier",
    "DigitsCNN",
    "ResidualMLP",
    "TimmBackbone",
    "TorchvisionResNet",
    "WeightedEnsemble",
    "WideResNet",
    "build_backbone",
    "build_head",
    "feature_dim",
]
