"""Tiny ImageNet-LT from the standard ``tiny-imagenet-200`` folder.

Layout (as distributed at http://cs231n.stanford.edu/tiny-imagenet-200.zip):

- ``<data_dir>/tiny-imagenet-200/wnids.txt``: the 200 WordNet ids, one per line;
- ``<data_dir>/tiny-imagenet-200/words.txt`` (optional): ``<wnid>\\t<names>``, used for class names;
- ``<data_dir>/tiny-imagenet-200/train/<wnid>/images/*.JPEG``: 500 64x64 images per class;
- ``<data_dir>/tiny-imagenet-200/val/images/*.JPEG`` and ``val/val_annotations.txt``
  (``<file>\\t<wnid>\\t<x0>\\t<y0>\\t<x1>\\t<y1>``): 50 images per class.

Construction of Tiny ImageNet-LT (published here because no peer publishes one):

1. classes are the wnids of ``wnids.txt`` sorted alphabetically; class c is the c-th;
2. the training pool is the official training set (500 per class, so n_max = 500);
3. n_c = floor(500 * rho^(-c/199)) images of class c are drawn without replacement with
   ``numpy.random.default_rng(split_seed)`` (one permutation per class, in class order), from the
   pool's files sorted by path (rho = 100 by default: 500 down to 5 images, 21,549 in total);
4. validation: ``val_fraction`` of each class is held out from that split (0 = validate on the test set);
5. the official validation set (50 per class, balanced) is the test set.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lt_imbalance.data.base import ValSource
from lt_imbalance.data.files import FileImageDataModule
from lt_imbalance.data.loading_mode import MEMORY_LIMIT_MIB
from lt_imbalance.data.parts import DataPart, DatasetParts
from lt_imbalance.data.readers.folders import list_image_folder
from lt_imbalance.data.readers.tiny_imagenet import read_val_annotations
from lt_imbalance.data.samplers import SamplerName
from lt_imbalance.data.splits import Profile
from lt_imbalance.errors import BadValue, MissingFile

SOURCE = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"


class TinyImageNetLT(FileImageDataModule):
    """Tiny ImageNet-LT (200 classes, 64x64 RGB; construction in the module docstring).

    After its own options the signature lists the shared ones of
    :class:`~lt_imbalance.data.files.FileImageDataModule`,
    :class:`~lt_imbalance.data.image.ImageDataModule` and
    :class:`~lt_imbalance.data.base.LongTailedDataModule` (documented there).

    Args:
        data_dir: the folder holding ``tiny-imagenet-200`` (or that folder itself).
        val_fraction: stratified validation share of the training split (default 0: validate on the test set).
    """

    def __init__(
        self,
        data_dir: str = "data",
        image_size: int = 64,
        channels: int = 3,
        in_memory: bool | None = None,
        resize_size: int | None = None,
        gpu_decode: bool = False,
        memory_limit_mib: float = MEMORY_LIMIT_MIB,
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
            image_size=image_size, channels=channels, in_memory=in_memory, resize_size=resize_size,
            gpu_decode=gpu_decode, memory_limit_mib=memory_limit_mib, augmentation=augmentation,
            device_data=device_data, mean=mean, std=std, batch_size=batch_size, num_workers=num_workers,
            imbalance_ratio=imbalance_ratio, profile=profile, split_seed=split_seed, val_fraction=val_fraction,
            val_source=val_source, val_per_class=val_per_class, val_folds=val_folds, val_fold=val_fold, ssl_views=ssl_views, sampler=sampler,
        )  # fmt: skip
        self.data_dir = data_dir
        self.root = self._locate(Path(data_dir))
        self.wnids = sorted(w.strip() for w in (self.root / "wnids.txt").read_text().splitlines() if w.strip())

    def load_data(self) -> DatasetParts:
        names, paths, labels = list_image_folder(self.root / "train", self.wnids)
        missing = [w for c, w in enumerate(self.wnids) if not np.any(labels == c)]
        if missing:
            raise BadValue(f"{self.root / 'train'}: no images for wnids {missing[:5]} (expected train/<wnid>/images/*.JPEG)")
        test_paths, test_labels = read_val_annotations(self.root / "val" / "val_annotations.txt", self.wnids)
        return DatasetParts(self._readable_names(self.root, self.wnids), DataPart(labels, paths), DataPart(test_labels, test_paths))

    @staticmethod
    def _locate(data_dir: Path) -> Path:
        for root in (data_dir / "tiny-imagenet-200", data_dir):
            if (root / "wnids.txt").is_file() and (root / "train").is_dir() and (root / "val" / "val_annotations.txt").is_file():
                return root
        raise MissingFile(
            f"TinyImageNetLT: no dataset at '{data_dir / 'tiny-imagenet-200'}' (expected wnids.txt, "
            f"train/<wnid>/images/*.JPEG and val/val_annotations.txt with val/images/). Download {SOURCE} "
            f"and unzip it into '{data_dir}'."
        )

    @staticmethod
    def _readable_names(root: Path, wnids: list[str]) -> list[str]:
        """``wnid: first name`` from words.txt where present, else the wnid."""
        words = {}
        if (root / "words.txt").is_file():
            for line in (root / "words.txt").read_text().splitlines():
                wnid, _, text = line.partition("\t")
                words[wnid] = text.split(",")[0].strip()
        return [f"{w}: {words[w]}" if words.get(w) else w for w in wnids]
