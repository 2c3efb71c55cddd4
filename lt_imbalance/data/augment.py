"""Augmentation policies by name, applied per sample to uint8 CHW tensors (torchvision v2).

Data modules hold images as uint8 tensors; a policy only crops, flips and re-colours them.
Conversion to float and normalisation happen once per batch on the device
(:meth:`lt_imbalance.data.image.ImageDataModule.on_after_batch_transfer`), so a batched on-device policy can
replace the per-sample one without reshaping the data modules.

Policies (the paper, section 4.2, finds augmentation matters most for minority classes):

- ``none``: identity;
- ``standard``: random crop with zero padding of size/8 (4 px at 32 px) + horizontal flip;
- ``autoaugment``: ``standard`` + AutoAugment's CIFAR-10 policy (Cubuk et al. 2019);
- ``randaugment``: ``standard`` + RandAugment (N=2, M=9; Cubuk et al. 2020);
- ``trivialaugment``: ``standard`` + TrivialAugmentWide (Müller and Hutter 2021);
- ``random_resized_crop``: the ImageNet-style crop of the full-resolution image (area share
  U(0.08, 1), aspect ratio in [3/4, 4/3]) resized to the image size, + horizontal flip, for the
  large file-backed data (ImageNet-LT, Places-LT, iNaturalist); per sample only (not on-device).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torchvision.transforms import v2

from lt_imbalance.errors import BadValue

POLICIES = ("none", "standard", "autoaugment", "randaugment", "trivialaugment", "random_resized_crop")


def check_policy(policy: str) -> str:
    if policy not in POLICIES:
        raise BadValue(f"unknown augmentation policy {policy!r}; choose one of {', '.join(POLICIES)}.")
    return policy


def build_train_transform(policy: str, image_size: int, hflip: bool = True) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The per-sample training transform of ``policy`` for square images of side ``image_size``.

    ``hflip=False`` for data whose meaning changes under mirroring (digits, text).
    Returns ``None`` for ``none`` so loaders skip the call.
    """
    check_policy(policy)
    if policy == "none":
        return None
    if policy == "random_resized_crop":
        crop: list[torch.nn.Module] = [v2.RandomResizedCrop(image_size, antialias=True)]
        return v2.Compose(crop + ([v2.RandomHorizontalFlip()] if hflip else []))
    ops: list[torch.nn.Module] = [v2.RandomCrop(image_size, padding=max(1, image_size // 8))]
    if hflip:
        ops.append(v2.RandomHorizontalFlip())
    if policy == "autoaugment":
        ops.append(v2.AutoAugment(v2.AutoAugmentPolicy.CIFAR10))
    elif policy == "randaugment":
        ops.append(v2.RandAugment(num_ops=2, magnitude=9))
    elif policy == "trivialaugment":
        ops.append(v2.TrivialAugmentWide())
    return v2.Compose(ops)


def build_ssl_transform(image_size: int, hflip: bool = True, channels: int = 3) -> Callable[[torch.Tensor], torch.Tensor]:
    """A SimCLR-style view (Chen et al. 2020) for Joint-SSL, sized for small images.

    Random resized crop (scale 0.2-1), horizontal flip (when ``hflip``), colour jitter
    (0.4, 0.4, 0.4, 0.1) with p = 0.8 and grey-scale with p = 0.2 for RGB; no Gaussian blur, which
    destroys 32 px (and smaller) images.
    """
    ops: list[torch.nn.Module] = [v2.RandomResizedCrop(image_size, scale=(0.2, 1.0), antialias=True)]
    if hflip:
        ops.append(v2.RandomHorizontalFlip())
    if channels == 3:
        ops += [v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8), v2.RandomGrayscale(p=0.2)]
    else:
        ops.append(v2.RandomApply([v2.ColorJitter(0.4, 0.4)], p=0.8))
    return v2.Compose(ops)
