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
import torchvision
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import v2

from lt_imbalance.errors import BadValue, CannotAccess


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
            return self.item(self.load(i), i)

    def item(self, raw: torch.Tensor, i: int) -> tuple:
        """``(transform(raw), y[, views(raw), views(raw)])`` of sample ``i`` (inside its seed's scope)."""
        x = raw if self.transform is None else self.transform(raw)
        if self.views is None:
            return x, self.labels[i]
        return x, self.labels[i], self.views(raw), self.views(raw)


class TensorImageDataset(ItemDataset):
    """uint8 images ``[N, C, H, W]`` and int64 labels held in memory."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform=None, views=None):
        super().__init__(transform, views)
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise BadValue(f"images must be a uint8 tensor [N, C, H, W], got {images.dtype} {tuple(images.shape)}")
        if len(images) != len(labels):
            raise BadValue(f"{len(images)} images but {len(labels)} labels")
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
                x = v2.functional.pil_to_tensor(eight_bit(img, self.paths[i]).convert(self.mode))
        except OSError as err:
            raise CannotAccess(f"cannot read image '{self.paths[i]}': {err}") from err
        return self.fit(x)

    def fit(self, x: torch.Tensor) -> torch.Tensor:
        """A decoded image resized and centre-cropped (unless ``full_resolution``), on any device."""
        return x if self.resize is None else self.resize(x)


#: Pillow's modes of one channel of more than 8 bits of integers: scaled from 0..65535 to 0..255
WIDE_INTEGER_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def eight_bit(img: Image.Image, path: Path | str) -> Image.Image:
    """``img`` with 8 bits a channel: a 16-bit grey image scaled from 0..65535 (Pillow's own
    conversion clips every value above 255 to white); a floating-point image is an ``OSError`` (not
    readable as an image of known range), said with the fix.

    Examples:
        >>> import numpy as np
        >>> wide = Image.fromarray(np.array([[0, 257, 65535]], dtype=np.uint16))
        >>> np.asarray(eight_bit(wide, "x.png")).tolist()
        [[0, 1, 255]]
    """
    import numpy as np

    if img.mode in WIDE_INTEGER_MODES:
        values = np.asarray(img, dtype=np.float64)
        return Image.fromarray(np.clip(np.round(values / 257.0), 0, 255).astype(np.uint8), mode="L")
    if img.mode == "F":
        raise OSError("it holds floating-point pixels (mode F), whose range is unknown; save it as an 8- or 16-bit image")
    return img


class EncodedImageDataset(Dataset):
    """The files of an :class:`ImageFileDataset` as their encoded bytes, for decoding a whole batch
    on the training device (:func:`decode_encoded_batch`): items are ``{"encoded", "key", "path"}``."""

    def __init__(self, files: ImageFileDataset):
        self.files, self.labels = files, files.labels

    def __len__(self) -> int:
        return len(self.files.paths)

    def load(self, i: int) -> torch.Tensor:
        """Sample ``i`` decoded on the CPU (for the normalisation statistics)."""
        return self.files.load(i)

    def __getitem__(self, key) -> dict[str, Any]:
        index = key[0] if isinstance(key, tuple) else key
        path = self.files.paths[index]
        try:
            encoded = torchvision.io.read_file(str(path))
        except (OSError, RuntimeError) as err:
            raise CannotAccess(f"cannot read image '{path}': {err}") from err
        return {"encoded": encoded, "key": key, "path": str(path)}


def collate_encoded(items: list[dict[str, Any]]) -> dict[str, Any]:
    """A batch of encoded items: the files' bytes joined into one tensor with their ``lengths`` (one
    shared-memory block per batch from a loader worker, not one per file: a batch of 256 separate
    tensors exhausts the file descriptors that carry them between processes), keys and paths as lists."""
    encoded = [item["encoded"] for item in items]
    return {
        "encoded": torch.cat(encoded),
        "lengths": torch.tensor([len(e) for e in encoded]),
        "key": [item["key"] for item in items],
        "path": [item["path"] for item in items],
    }


def decode_encoded_batch(batch: dict[str, Any], files: ImageFileDataset, device: torch.device) -> tuple[torch.Tensor, ...]:
    """Decode a batch of JPEG files (:func:`collate_encoded`) together on ``device`` (nvJPEG on a GPU;
    the bytes stay on the host, as torchvision asks), then give each image its item's transforms
    under its own seed, as :meth:`ItemDataset.__getitem__` would: ``(x, y[, view, view])`` stacked on ``device``."""
    mode = torchvision.io.ImageReadMode.RGB if files.mode == "RGB" else torchvision.io.ImageReadMode.GRAY
    encoded_files = list(torch.split(batch["encoded"], batch["lengths"].tolist()))
    try:
        decoded = torchvision.io.decode_jpeg(encoded_files, mode=mode, device=device)
    except RuntimeError:
        for encoded, path in zip(encoded_files, batch["path"]):  # find the file that failed, and name it
            try:
                torchvision.io.decode_jpeg(encoded, mode=mode)
            except RuntimeError as err:
                raise CannotAccess(f"cannot decode '{path}' as a JPEG ({err}); gpu_decode reads JPEG files only") from err
        raise
    items = []
    for raw, key in zip(decoded, batch["key"]):
        with seeded(key) as i:
            items.append(files.item(files.fit(raw), i))
    columns = list(zip(*items))
    return tuple(torch.stack(column).to(device) for column in columns)


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
