"""Feature extractors by name (plain PyTorch). Each exposes ``out_features``, the width of the
feature vector its forward returns; :func:`build_backbone` sizes it from the data's ``input_shape``
(``(C, H, W)`` for images, ``(F,)`` for feature vectors).

- ``resnet20/32/44/56/110``: CIFAR ResNets of He et al. 2016 (section 4.2): 3 stages of 16, 32,
  64 channels, (depth - 2) / 6 basic blocks each, parameter-free "option A" shortcuts
  (ResNet-32: about 0.46M parameters), as in the LDAM / CIFAR-LT code bases.
- ``wideresnet28``: WRN-28-k of Zagoruyko and Komodakis 2016 (``width`` k, default 10).
- ``resnet18`` / ``resnet50`` / ``resnext50`` (32x4d): torchvision's, randomly initialised (no download); with
  ``small_image_stem`` the 7x7/2 stem and max-pool become one 3x3/1 convolution for 32 px images.
- ``digits_cnn``: a three-layer CNN for 8x8 images (about 0.1M parameters).
- ``timm/<name>``: any model of the timm library (:mod:`lt_imbalance.models.timm_backbone`).
- ``mlp`` / ``resmlp``: for feature vectors (tables) of ``in_features`` values.
  ``mlp``: [Linear, BatchNorm, ReLU, Dropout] x len(hidden); ``resmlp``: a linear stem and
  ``depth`` pre-norm residual blocks x + Linear(Dropout(ReLU(Linear(BatchNorm(x))))) (Gorishniy
  et al. 2021's ResNet for tabular data).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from lt_imbalance.errors import BadValue
from lt_imbalance.models.timm_backbone import TIMM_PREFIX, TimmBackbone


class _CifarBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.stride, self.pad = stride, c_out - c_in

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        """Option A: subsample spatially and zero-pad the new channels (no parameters)."""
        if self.stride == 1 and self.pad == 0:
            return x
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class CifarResNet(nn.Module):
    """CIFAR ResNet-``depth`` (depth = 6n + 2) returning pooled 64-d features."""

    def __init__(self, depth: int = 32, in_channels: int = 3):
        super().__init__()
        if (depth - 2) % 6:
            raise BadValue(f"CIFAR ResNet depth must be 6n + 2 (20, 32, 44, 56, 110), got {depth}")
        n = (depth - 2) // 6
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True))
        blocks, c_in = [], 16
        for c_out, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(n):
                blocks.append(_CifarBlock(c_in, c_out, stride if i == 0 else 1))
                c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.out_features = 64
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(self.blocks(self.stem(x)), 1).flatten(1)


class _WideBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, dropout: float):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(c_in), nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(c_out), nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.proj = None if (c_in == c_out and stride == 1) else nn.Conv2d(c_in, c_out, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o = F.relu(self.bn1(x))
        shortcut = x if self.proj is None else self.proj(o)
        o = self.conv1(o)
        o = self.conv2(self.dropout(F.relu(self.bn2(o))))
        return o + shortcut


class WideResNet(nn.Module):
    """WRN-``depth``-``width`` (depth = 6n + 4, pre-activation blocks) returning pooled features."""

    def __init__(self, depth: int = 28, width: int = 10, dropout: float = 0.0, in_channels: int = 3):
        super().__init__()
        if (depth - 4) % 6:
            raise BadValue(f"WideResNet depth must be 6n + 4 (16, 22, 28, 40), got {depth}")
        n = (depth - 4) // 6
        widths = (16 * width, 32 * width, 64 * width)
        self.stem = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        blocks, c_in = [], 16
        for c_out, stride in zip(widths, (1, 2, 2)):
            for i in range(n):
                blocks.append(_WideBlock(c_in, c_out, stride if i == 0 else 1, dropout))
                c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.bn = nn.BatchNorm2d(c_in)
        self.out_features = c_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o = F.relu(self.bn(self.blocks(self.stem(x))))
        return F.adaptive_avg_pool2d(o, 1).flatten(1)


class TorchvisionResNet(nn.Module):
    """A torchvision ResNet (18/34/50/101, ResNeXt-50 32x4d) without its classifier, randomly initialised."""

    def __init__(self, arch: str = "resnet18", in_channels: int = 3, small_image_stem: bool = False):
        super().__init__()
        import torchvision.models

        if arch not in ("resnet18", "resnet34", "resnet50", "resnet101", "resnext50_32x4d"):
            raise BadValue(f"unknown torchvision ResNet {arch!r}; use resnet18, resnet34, resnet50, resnet101 or resnext50_32x4d")
        net = getattr(torchvision.models, arch)(weights=None)
        if small_image_stem:
            net.conv1 = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
            net.maxpool = nn.Identity()
        elif in_channels != 3:
            net.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.out_features = net.fc.in_features
        net.fc = nn.Identity()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class DigitsCNN(nn.Module):
    """Three 3x3 conv layers (32, 64, 128 channels) with BatchNorm for 8x8 images; 128-d features."""

    def __init__(self, in_channels: int = 1, width: int = 32):
        super().__init__()

        def block(c_in: int, c_out: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))

        self.features = nn.Sequential(block(in_channels, width), block(width, 2 * width), nn.MaxPool2d(2), block(2 * width, 4 * width))
        self.out_features = 4 * width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(self.features(x), 1).flatten(1)


class MLP(nn.Module):
    """Feature-vector MLP: [Linear, BatchNorm1d, ReLU, Dropout] per hidden width."""

    def __init__(self, in_features: int, hidden: tuple[int, ...] = (256, 256), dropout: float = 0.1):
        super().__init__()
        layers, width = [], in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.BatchNorm1d(h), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            width = h
        self.net = nn.Sequential(*layers)
        self.out_features = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))


class _ResidualBlock(nn.Module):
    def __init__(self, width: int, dropout: float):
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm1d(width), nn.Linear(width, 2 * width), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(2 * width, width)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResidualMLP(nn.Module):
    """Tabular ResNet: a linear stem, ``depth`` residual blocks, then BatchNorm + ReLU."""

    def __init__(self, in_features: int, width: int = 128, depth: int = 3, dropout: float = 0.1):
        super().__init__()
        self.stem = nn.Linear(in_features, width)
        self.blocks = nn.Sequential(*[_ResidualBlock(width, dropout) for _ in range(depth)])
        self.out = nn.Sequential(nn.BatchNorm1d(width), nn.ReLU(inplace=True))
        self.out_features = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.blocks(self.stem(x.flatten(1))))


#: backbones for images: built with ``in_channels`` = C of the input shape (C, H, W)
IMAGE_BACKBONES: dict[str, Callable[..., nn.Module]] = {
    **{f"resnet{d}": partial(CifarResNet, depth=d) for d in (20, 32, 44, 56, 110)},
    "wideresnet28": partial(WideResNet, depth=28),
    "resnet18": partial(TorchvisionResNet, "resnet18"),
    "resnet50": partial(TorchvisionResNet, "resnet50"),
    "resnext50": partial(TorchvisionResNet, "resnext50_32x4d"),
    "digits_cnn": DigitsCNN,
}
#: backbones for feature vectors: built with ``in_features`` = the number of values per sample
VECTOR_BACKBONES: dict[str, Callable[..., nn.Module]] = {"mlp": MLP, "resmlp": ResidualMLP}
BACKBONES = {**IMAGE_BACKBONES, **VECTOR_BACKBONES}


def build_backbone(name: str, input_shape: Sequence[int] = (3, 32, 32), **kwargs) -> nn.Module:
    """Instantiate a backbone of :data:`BACKBONES` by name for inputs of ``input_shape``
    (without the batch dimension), or ``timm/<model>`` for any timm model (:class:`TimmBackbone`,
    ``in_chans`` from the data); unknown names list the known ones."""
    shape = tuple(int(n) for n in input_shape)
    if name.startswith(TIMM_PREFIX):
        if len(shape) != 3:
            raise BadValue(f"timm backbones take images (channels, height, width), but the data gives inputs of shape {shape}")
        return TimmBackbone(name.removeprefix(TIMM_PREFIX), in_chans=shape[0], **kwargs)
    if name not in BACKBONES:
        raise BadValue(
            f"unknown backbone {name!r}; choose one of {', '.join(sorted(BACKBONES))}, timm/<any timm model name>, "
            "or give a class_path to any nn.Module with an `out_features` attribute."
        )
    if name in VECTOR_BACKBONES:
        return VECTOR_BACKBONES[name](in_features=math.prod(shape), **kwargs)
    if len(shape) != 3:
        raise BadValue(
            f"backbone {name!r} takes images (channels, height, width), but the data gives inputs of shape {shape}; "
            f"for feature vectors use {' or '.join(VECTOR_BACKBONES)}."
        )
    return IMAGE_BACKBONES[name](in_channels=shape[0], **kwargs)


def feature_dim(backbone: nn.Module) -> int:
    """The backbone's feature width (``out_features`` or ``num_features``); errors say how to fix it."""
    for attr in ("out_features", "num_features"):
        value = getattr(backbone, attr, None)
        if isinstance(value, int):
            return value
    raise BadValue(
        f"backbone {type(backbone).__name__} does not say its feature width; give it an integer "
        "`out_features` attribute (the size of the vector its forward returns)."
    )
