"""Backbones (feature extractors) by name."""

from lt_imbalance.models.backbones import BACKBONES, CifarResNet, DigitsCNN, TorchvisionResNet, WideResNet, build_backbone

__all__ = ["BACKBONES", "CifarResNet", "DigitsCNN", "TorchvisionResNet", "WideResNet", "build_backbone"]
