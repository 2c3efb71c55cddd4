"""CIFAR-10-LT and CIFAR-100-LT from the standard python-pickle folders.

Layout (as distributed at https://www.cs.toronto.edu/~kriz/cifar.html and by torchvision):

- ``<data_dir>/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}``
- ``<data_dir>/cifar-100-python/{train, test, meta}``

The project reads the pickles itself (no md5 check), so any folder in that format works. The
long-tailed training split has the exponential profile of Cao et al. 2019 (n_max = 5,000 for
CIFAR-10 and 500 for CIFAR-100 on the real data); the 10,000-image test set stays balanced.

Which images: ``split_protocol: cao2019`` (the default) selects them with Cao et al.'s procedure
(:func:`~lt_imbalance.data.splits.draw_cao2019`: NumPy's legacy generator seeded once with
``split_seed``, their default 0, then per class in order a shuffle of its positions in the
training pickles, keeping the first n_c), so the training images are those of the LDAM-DRW,
MiSLAS and Shwartz-Ziv et al. code and results can be set beside theirs; ``seeded`` draws them
with ``numpy.random.default_rng(split_seed)`` like every other data module (for sweeps over
split seeds). Both give the same class counts. ``run_metadata.json`` records the protocol.

``download: true`` downloads in ``prepare_data`` (once per node, before ``setup``). Until the
files exist, the class counts come from the published per-class sizes of the training set
(5,000 / 500 images per class): the counts of the split depend on the class sizes alone, and
``setup`` checks them against the downloaded labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from lt_imbalance.data.base import ValSource
from lt_imbalance.data.image import ImageDataModule
from lt_imbalance.data.parts import DataPart, DatasetParts
from lt_imbalance.data.readers.cifar import pickle_images, unpickle
from lt_imbalance.data.samplers import SamplerName
from lt_imbalance.data.splits import Draw, Profile, draw_cao2019, long_tailed_counts
from lt_imbalance.errors import BadValue, MissingFile, UnsupportedCombination

SOURCE = "https://www.cs.toronto.edu/~kriz/cifar.html"


class _CIFARLT(ImageDataModule):
    """CIFAR-LT (module docstring).

    After its own options the signature lists the shared ones of
    :class:`~lt_imbalance.data.image.ImageDataModule` and
    :class:`~lt_imbalance.data.base.LongTailedDataModule` (documented there).

    Args:
        data_dir: the folder holding the pickle folder (or that folder itself).
        download: download the data in ``prepare_data`` when it is missing (needs the internet).
        val_fraction: stratified validation share of the training split (default 0: validate on
            the test set, the CIFAR-LT protocol).
        split_protocol: ``cao2019`` (the literature's images) or ``seeded`` (module docstring).
    """

    folder: str
    train_files: tuple[str, ...]
    test_file: str
    meta_file: str
    label_key: str
    names_key: str
    torchvision_class: str
    classes: int
    per_class_train: int

    def __init__(
        self,
        data_dir: str = "data",
        download: bool = False,
        split_protocol: Literal["cao2019", "seeded"] = "cao2019",
        augmentation: str = "standard",
        device_data: bool = False,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        batch_size: int = 128,
        num_workers: int = 0,
        imbalance_ratio: float = 100.0,
        profile: Profile = "exponential",
        split_seed: int = 0,
        val_fraction: float = 0.0,
        val_source: ValSource = "split",
        val_per_class: int = 20,
        val_folds: int = 0,
        val_fold: int = 0,
        ssl_views: bool = False,
        sampler: SamplerName = "random",
    ):
        super().__init__(
            augmentation=augmentation, device_data=device_data, mean=mean, std=std, batch_size=batch_size,
            num_workers=num_workers, imbalance_ratio=imbalance_ratio, profile=profile, split_seed=split_seed,
            val_fraction=val_fraction, val_source=val_source, val_per_class=val_per_class, val_folds=val_folds, val_fold=val_fold, ssl_views=ssl_views,
            sampler=sampler,
        )  # fmt: skip
        if split_protocol not in ("cao2019", "seeded"):
            raise BadValue(f"unknown split_protocol {split_protocol!r}; choose cao2019 (the literature's images) or seeded")
        if split_protocol == "cao2019" and self.val_source == "pool":
            raise UnsupportedCombination(
                "split_protocol cao2019 draws from the whole training set, so no pool images can be held out for validation; "
                "use val_source: split (val_fraction > 0), or split_protocol: seeded with val_source: pool"
            )
        self.data_dir, self.download, self.split_protocol = data_dir, download, split_protocol
        if not download:
            self._locate()  # fail now, with the fix, when the data is missing

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (3, 32, 32)

    @property
    def num_classes(self) -> int:
        return self.classes

    def _root(self) -> Path | None:
        """The pickle folder: ``data_dir/<folder>`` or ``data_dir`` itself, if the files are there."""
        data_dir = Path(self.data_dir)
        for root in (data_dir / self.folder, data_dir):
            if all((root / f).is_file() for f in (*self.train_files, self.test_file, self.meta_file)):
                return root
        return None

    def _locate(self) -> Path:
        root = self._root()
        if root is None:
            expected = ", ".join((*self.train_files, self.test_file, self.meta_file))
            raise MissingFile(
                f"{type(self).__name__}: no dataset at '{Path(self.data_dir) / self.folder}' (expected the files {expected}). "
                f"Download and extract the python version from {SOURCE} into '{self.data_dir}', "
                "or set data.init_args.download: true where the internet is reachable."
            )
        return root

    def prepare_data(self) -> None:
        if self.download and self._root() is None:
            import torchvision.datasets

            getattr(torchvision.datasets, self.torchvision_class)(str(self.data_dir), train=True, download=True)

    def pool_labels(self) -> np.ndarray:
        if self.download and self._root() is None:  # before the download: the published class sizes
            return np.repeat(np.arange(self.classes), self.per_class_train)
        return super().pool_labels()

    def long_tailed_draw(self, pool_labels: np.ndarray, num_classes: int) -> Draw:
        if self.split_protocol == "seeded":
            return super().long_tailed_draw(pool_labels, num_classes)
        n_max = int(np.bincount(pool_labels, minlength=num_classes).min())  # 5,000 / 500: Cao's len(data) / classes
        counts = long_tailed_counts(num_classes, n_max, self.imbalance_ratio, self.profile)
        return draw_cao2019(pool_labels, counts, self.split_seed)

    @property
    def metadata(self) -> dict[str, Any]:
        return {**super().metadata, "split_protocol": self.split_protocol}

    def load_data(self) -> DatasetParts:
        root = self._locate()
        train = [unpickle(root / f) for f in self.train_files]
        test = unpickle(root / self.test_file)
        names = unpickle(root / self.meta_file)[self.names_key]
        labels = np.concatenate([np.asarray(e[self.label_key]) for e in train])
        return DatasetParts(
            class_names=names,
            pool=DataPart(labels, torch.cat([pickle_images(e) for e in train])),
            test=DataPart(np.asarray(test[self.label_key]), pickle_images(test)),
        )


class CIFAR10LT(_CIFARLT):
    """CIFAR-10-LT (10 classes, 32x32 RGB). Arguments as :class:`_CIFARLT`: ``data_dir`` holds ``cifar-10-batches-py``."""

    folder = "cifar-10-batches-py"
    train_files = tuple(f"data_batch_{i}" for i in range(1, 6))
    test_file = "test_batch"
    meta_file = "batches.meta"
    label_key = "labels"
    names_key = "label_names"
    torchvision_class = "CIFAR10"
    classes, per_class_train = 10, 5000


class CIFAR100LT(_CIFARLT):
    """CIFAR-100-LT (100 fine classes, 32x32 RGB). Arguments as :class:`_CIFARLT`: ``data_dir`` holds ``cifar-100-python``."""

    folder = "cifar-100-python"
    train_files = ("train",)
    test_file = "test"
    meta_file = "meta"
    label_key = "fine_labels"
    names_key = "fine_label_names"
    torchvision_class = "CIFAR100"
    classes, per_class_train = 100, 500
