"""CIFAR-10-LT and CIFAR-100-LT from the standard python-pickle folders.

Layout (as distributed at https://www.cs.toronto.edu/~kriz/cifar.html and by torchvision):

- ``<data_dir>/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}``
- ``<data_dir>/cifar-100-python/{train, test, meta}``

The project reads the pickles itself (no md5 check), so any folder in that format works.
The long-tailed training split follows DESIGN.md section 3 (exponential profile, n_max = 5,000
for CIFAR-10 and 500 for CIFAR-100); the 10,000-image test set stays balanced.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from lt_imbalance.data.base import LongTailedDataModule
from lt_imbalance.data.samplers import SamplerName
from lt_imbalance.data.splits import Profile


def _unpickle(path: Path) -> dict:
    with open(path, "rb") as f:
        return pickle.load(f, encoding="latin1")


def _images(entry: dict) -> torch.Tensor:
    data = np.asarray(entry["data"], dtype=np.uint8)
    return torch.from_numpy(data.reshape(-1, 3, 32, 32).copy())


class _CIFARLT(LongTailedDataModule):
    folder: str
    train_files: tuple[str, ...]
    test_file: str
    meta_file: str
    label_key: str
    names_key: str
    torchvision_class: str
    mean = (0.4914, 0.4822, 0.4465)
    std = (0.2470, 0.2435, 0.2616)

    def __init__(
        self,
        data_dir: str = "data",
        download: bool = False,
        batch_size: int = 128,
        num_workers: int = 0,
        augmentation: str = "standard",
        imbalance_ratio: float = 100.0,
        profile: Profile = "exponential",
        split_seed: int = 0,
        val_fraction: float = 0.0,
        ssl_views: bool = False,
        sampler: SamplerName = "random",
        device_data: bool = False,
    ):
        super().__init__(batch_size, num_workers, augmentation, imbalance_ratio, profile, split_seed, val_fraction, ssl_views, sampler, device_data)
        self.data_dir = data_dir
        root = self._locate(Path(data_dir), download)
        train = [_unpickle(root / f) for f in self.train_files]
        test = _unpickle(root / self.test_file)
        names = _unpickle(root / self.meta_file)[self.names_key]
        self._pool = (torch.cat([_images(e) for e in train]), torch.tensor(np.concatenate([e[self.label_key] for e in train])))
        self._test = (_images(test), torch.tensor(test[self.label_key]))
        self._init_split(self._pool[1].numpy(), names, image_size=32, num_channels=3)

    def _locate(self, data_dir: Path, download: bool) -> Path:
        """The pickle folder: ``data_dir/<folder>`` or ``data_dir`` itself; downloads if asked."""
        for root in (data_dir / self.folder, data_dir):
            if all((root / f).is_file() for f in (*self.train_files, self.test_file, self.meta_file)):
                return root
        if download:
            import torchvision.datasets

            getattr(torchvision.datasets, self.torchvision_class)(str(data_dir), train=True, download=True)
            return data_dir / self.folder
        expected = ", ".join((*self.train_files, self.test_file, self.meta_file))
        raise FileNotFoundError(
            f"{type(self).__name__}: no dataset at '{data_dir / self.folder}' (expected the files {expected}). "
            f"Download and extract the python version from https://www.cs.toronto.edu/~kriz/cifar.html into "
            f"'{data_dir}', or set data.download: true where the internet is reachable."
        )


class CIFAR10LT(_CIFARLT):
    """CIFAR-10-LT (10 classes, 32x32 RGB). Arguments as :class:`LongTailedDataModule`, plus
    ``data_dir`` (the folder holding ``cifar-10-batches-py``) and ``download``."""

    folder = "cifar-10-batches-py"
    train_files = tuple(f"data_batch_{i}" for i in range(1, 6))
    test_file = "test_batch"
    meta_file = "batches.meta"
    label_key = "labels"
    names_key = "label_names"
    torchvision_class = "CIFAR10"


class CIFAR100LT(_CIFARLT):
    """CIFAR-100-LT (100 fine classes, 32x32 RGB). Arguments as :class:`CIFAR10LT`; the folder is ``cifar-100-python``."""

    folder = "cifar-100-python"
    train_files = ("train",)
    test_file = "test"
    meta_file = "meta"
    label_key = "fine_labels"
    names_key = "fine_label_names"
    torchvision_class = "CIFAR100"
    mean = (0.5071, 0.4865, 0.4409)
    std = (0.2673, 0.2564, 0.2762)
