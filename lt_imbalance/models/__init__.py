"""Backbones (feature extractors) by name: images and feature vectors."""

from lt_imbalance.models.backbones import BACKBONES, MLP, CifarResNet, DigitsCNN, ResidualMLP, TorchvisionResNet, WideResNet, build_backbone

__all__ = ["BACKBONES", "MLP", "CifarResNet", "DigitsCNN", "ResidualMLP", "TorchvisionResNet", "WideResNet", "build_backbone"]
