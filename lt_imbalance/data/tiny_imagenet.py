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

from lt_imbalance.data.files import FileImageDataModule, list_image_folder
from lt_imbalance.data.parts import DataPart, DatasetParts
from lt_imbalance.errors import BadValue, MissingFile

SOURCE = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"


def read_val_annotations(path: Path, wnids: Sequence[str]) -> tuple[list[Path], np.ndarray]:
    """Test files and labels from ``val_annotations.txt``; malformed lines name the file and line."""
    index = {w: c for c, w in enumerate(wnids)}
    paths, labels = [], []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 2:
            raise BadValue(f"{path}, line {number}: expected '<file>\\t<wnid>\\t...', got {line!r}")
        if fields[1] not in index:
            raise BadValue(f"{path}, line {number}: wnid {fields[1]!r} is not in wnids.txt")
        image = path.parent / "images" / fields[0]
        if not image.is_file():
            raise MissingFile(f"{path}, line {number}: image '{image}' does not exist")
        paths.append(image)
        labels.append(index[fields[1]])
    return paths, np.asarray(labels, dtype=np.int64)


class TinyImageNetLT(FileImageDataModule):
    """Tiny ImageNet-LT (200 classes, 64x64 RGB; construction in the module docstring).

    Args:
        data_dir: the folder holding ``tiny-imagenet-200`` (or that folder itself).
        val_fraction: stratified validation share of the training split (default 0: validate on the test set).
        **kwargs: the arguments of :class:`~lt_imbalance.data.files.FileImageDataModule`,
            :class:`~lt_imbalance.data.image.ImageDataModule` and
            :class:`~lt_imbalance.data.base.LongTailedDataModule`.
    """

    def __init__(self, data_dir: str = "data", val_fraction: float = 0.0, **kwargs):
        super().__init__(val_fraction=val_fraction, **kwargs)
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
