"""The datasets the data modules serve (plain PyTorch): uint8 images held in memory or decoded
from files, and float feature rows. Items are ``(x, y)``, or ``(x, y, view, view)`` with SSL views
(Joint-SSL). Keys may be ``(index, seed)`` pairs from
:class:`~lt_imbalance.data.samplers.EpochSampler`: the item's random transforms then draw from
that seed, so an epoch can be replayed exactly."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import v2


@contextmanager
def seeded(key: Any) -> Iterator[int]:
    """``key`` is an index, or ``(index, seed)``: then the random transforms of that item draw from
    ``seed`` (and leave the global RNG as it was)."""
    if not isinstance(key, tuple):
        yield key
        return
    index, seed = key
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield index


class ItemDataset(Dataset):
    """Base of the datasets: ``load(i)`` gives sample i; items are ``(transform(x), y)``, or
    ``(transform(x), y, views(x), views(x))`` when ``views`` is set."""

    labels: torch.Tensor

    def __init__(self, transform=None, views=None):
        self.transform, self.views = transform, views

    def __len__(self) -> int:
        return len(self.labels)

    def load(self, i: int) -> torch.Tensor:
        raise NotImplementedError

    def __getitem__(self, key):
        with seeded(key) as i:
            raw = self.load(i)
            x = raw if self.transform is None else self.transform(raw)
            if self.views is None:
                return x, self.labels[i]
            return x, self.labels[i], self.views(raw), self.views(raw)


class TensorImageDataset(ItemDataset):
    """uint8 images ``[N, C, H, W]`` and int64 labels held in memory."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform=None, views=None):
        super().__init__(transform, views)
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"images must be a uint8 tensor [N, C, H, W], got {images.dtype} {tuple(images.shape)}")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images, self.labels = images, labels.long()

    def load(self, i: int) -> torch.Tensor:
        return self.images[i]


class ImageFileDataset(ItemDataset):
    """Decodes and converts (RGB or grey) image files on access, then resizes the shorter side to
    ``resize_size`` (default ``image_size``) and centre-crops ``image_size``: uint8
    ``[C, image_size, image_size]``. With ``full_resolution`` the decoded image is returned as it
    is (for a transform that crops it, e.g. RandomResizedCrop). An unreadable file is named in the error."""

    def __init__(
        self,
        paths: Sequence[Path],
        labels: torch.Tensor,
        image_size: int,
        channels: int,
        transform=None,
        views=None,
        resize_size: int | None = None,
        full_resolution: bool = False,
    ):
        super().__init__(transform, views)
        self.paths, self.labels = list(paths), labels.long()
        self.mode = {1: "L", 3: "RGB"}[channels]
        resize = v2.Compose([v2.Resize(resize_size or image_size, antialias=True), v2.CenterCrop(image_size)])
        self.resize = None if full_resolution else resize

    def load(self, i: int) -> torch.Tensor:
        try:
            with Image.open(self.paths[i]) as img:
                x = v2.functional.pil_to_tensor(img.convert(self.mode))
        except OSError as err:
            raise OSError(f"cannot read image '{self.paths[i]}': {err}") from err
        return x if self.resize is None else self.resize(x)


class FeatureDataset(ItemDataset):
    """Float feature rows ``[N, F]`` and labels (tables); views are e.g. SCARF corruption."""

    def __init__(self, features: torch.Tensor, labels: torch.Tensor, views=None):
        super().__init__(None, views)
        self.features, self.labels = features, labels.long()

    def load(self, i: int) -> torch.Tensor:
        return self.features[i]


class IndexDataset(Dataset):
    """``device_data``'s training items: ``{"index", "label", "seed"}`` for an ``(index, seed)`` key."""

    def __init__(self, labels: torch.Tensor):
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, Any]:
        index, seed = key
        return {"index": index, "label": self.labels[index], "seed": seed}
