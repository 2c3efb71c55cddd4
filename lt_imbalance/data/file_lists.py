"""The large long-tailed benchmarks, read from their published file lists: ImageNet-LT, Places-LT
(Liu et al. 2019, "Large-Scale Long-Tailed Recognition in an Open World") and iNaturalist 2018
(Van Horn et al. 2018).

- **ImageNet-LT**: 1,000 classes drawn from ImageNet-2012 with a Pareto profile (1,280 down to 5
  training images per class, 115,846 in all); ``ImageNet_LT_{train,val,test}.txt`` list
  ``<path relative to the ImageNet root> <label>`` per line, e.g. ``train/n01440764/n01440764_190.JPEG 0``
  (val: 20 per class taken from the ImageNet training set; test: the 50,000 ImageNet validation
  images, 50 per class, as ``val/<wnid>/ILSVRC2012_val_<n>.JPEG``, so the validation images must be
  sorted into wnid folders as the usual ImageNet preparation does).
- **Places-LT**: 365 classes of Places-365-Standard (4,980 down to 5 per class, 62,500 in all);
  ``Places_LT_{train,val,test}.txt`` in the same format over the ``places365_standard`` folder of
  Places-365's "easy format" (256 x 256) archive: ``train/airfield/00004851.jpg 0`` for train and
  val (20 per class, from the training images), ``val/airfield/Places365_val_00003597.jpg 0`` for
  test (100 per class). A leading ``/`` (as in Places-365's own lists) is ignored.
- **iNaturalist 2018**: 8,142 species, naturally long-tailed (1,000 down to 2 per class, 437,513
  training images); the official ``train2018.json`` / ``val2018.json`` (COCO-style ``images``,
  ``annotations`` with ``category_id``, ``categories``) with ``file_name`` relative to the data
  folder. As in the literature, the official validation set (3 per class) is the test set.

The lists fix the training distribution, so no long-tailed draw is made (``profile: none``); the
many / medium / few-shot groups use the literature's thresholds (>100, 20-100, <20 training
images; :mod:`lt_imbalance.metrics`). Images are decoded per access (streaming) by default.
A class is named after its folder (the ImageNet wnid, the Places scene) or, for iNaturalist,
its category name.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from lt_imbalance.data.files import FileImageDataModule
from lt_imbalance.data.parts import DataPart, DatasetParts
from lt_imbalance.data.splits import Profile
from lt_imbalance.errors import BadValue, MissingFile

#: how many missing images an error names before it counts the rest
MISSING_SHOWN = 5


def read_file_list(list_path: Path, root: Path, num_classes: int | None = None) -> tuple[list[Path], np.ndarray]:
    """``(image paths, labels)`` of a ``<relative path> <label>`` list; errors name the file and line,
    labels out of ``[0, num_classes)`` and missing images (the first few, then a count)."""
    if not list_path.is_file():
        raise MissingFile(f"list file '{list_path}' not found; it lists '<image path relative to {root}> <label>' per line")
    paths, labels = [], []
    for number, line in enumerate(list_path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2 or not fields[1].lstrip("-").isdigit():
            raise BadValue(f"{list_path}, line {number}: expected '<relative image path> <integer label>', got {line!r}")
        label = int(fields[1])
        if label < 0 or (num_classes is not None and label >= num_classes):
            raise BadValue(f"{list_path}, line {number}: label {label} is outside 0..{num_classes - 1 if num_classes else 'N-1'}")
        paths.append(root / fields[0].lstrip("/"))
        labels.append(label)
    if not paths:
        raise BadValue(f"list file '{list_path}' lists no images")
    check_images_exist(paths, f"{list_path} lists")
    return paths, np.asarray(labels, dtype=np.int64)


def check_images_exist(paths: list[Path], source: str) -> None:
    """Raise naming the first :data:`MISSING_SHOWN` missing images and counting the rest."""
    missing = [p for p in paths if not p.is_file()]
    if missing:
        shown = ", ".join(f"'{p}'" for p in missing[:MISSING_SHOWN])
        more = f" and {len(missing) - MISSING_SHOWN} more" if len(missing) > MISSING_SHOWN else ""
        raise MissingFile(
            f"{source} {len(missing)} images that do not exist: {shown}{more}; point data_dir at the image tree the list is relative to"
        )


def folder_class_names(paths: list[Path], labels: np.ndarray, root: Path, num_classes: int) -> list[str]:
    """Class c is named after the folder of its first training image, relative to ``root``, less the
    folders every class shares (``train/n01440764`` -> ``n01440764``)."""
    first: dict[int, Path] = {}
    for path, label in zip(paths, labels.tolist()):
        first.setdefault(label, path.parent)
    missing = [c for c in range(num_classes) if c not in first]
    if missing:
        raise BadValue(f"classes {missing[:10]} have no training images in the list (every class needs at least one)")
    folders = [os.path.relpath(first[c], root) for c in range(num_classes)]
    shared = os.path.commonpath(folders) if num_classes > 1 else ""
    names = [os.path.relpath(f, shared) if shared else f for f in folders]
    return [n.replace(os.sep, "/") for n in names]


class FileListDataModule(FileImageDataModule):
    """A long-tailed benchmark given as list files of ``<relative image path> <label>`` lines.

    Args:
        data_dir: the image tree the lists' paths are relative to.
        train_list / val_list / test_list: the list files (relative to ``data_dir`` or absolute);
            without ``val_list``, ``val_fraction`` of the training list is held out (0: validate
            on the test set).
        num_classes: the number of classes (labels must lie in 0..num_classes-1).
        **kwargs: the arguments of :class:`~lt_imbalance.data.files.FileImageDataModule`,
            :class:`~lt_imbalance.data.image.ImageDataModule` and
            :class:`~lt_imbalance.data.base.LongTailedDataModule`.
    """

    def __init__(
        self,
        data_dir: str,
        train_list: str,
        test_list: str,
        num_classes: int,
        val_list: str | None = None,
        val_fraction: float = 0.0,
        image_size: int = 224,
        resize_size: int | None = 256,
        augmentation: str = "random_resized_crop",
        profile: Profile = "none",
        imbalance_ratio: float = 1.0,
        **kwargs,
    ):
        super().__init__(
            val_fraction=val_fraction, image_size=image_size, resize_size=resize_size, augmentation=augmentation,
            profile=profile, imbalance_ratio=imbalance_ratio, **kwargs,
        )  # fmt: skip
        self.has_official_val = val_list is not None
        self.check_validation_settings()
        self.data_dir, self.classes = Path(data_dir), num_classes
        self.lists = {"train": train_list, "val": val_list, "test": test_list}
        if not self.data_dir.is_dir():
            raise MissingFile(f"{type(self).__name__}: image folder '{self.data_dir}' not found; set data.init_args.data_dir")

    @property
    def num_classes(self) -> int:
        return self.classes

    def list_path(self, part: str) -> Path:
        path = Path(self.lists[part])
        return path if path.is_absolute() else self.data_dir / path

    def read_part(self, part: str) -> tuple[list[Path], np.ndarray]:
        return read_file_list(self.list_path(part), self.data_dir, self.classes)

    def load_data(self) -> DatasetParts:
        paths, labels = self.read_part("train")
        names = folder_class_names(paths, labels, self.data_dir, self.classes)
        test_paths, test_labels = self.read_part("test")
        val = None
        if self.has_official_val:
            val_paths, val_labels = self.read_part("val")
            val = DataPart(val_labels, val_paths)
        return DatasetParts(names, DataPart(labels, paths), DataPart(test_labels, test_paths), val)


class ImageNetLT(FileListDataModule):
    """ImageNet-LT (module docstring): ``data_dir`` is the ImageNet-2012 root (holding ``train/<wnid>/``
    and ``val/<wnid>/``) and the lists of Liu et al. 2019 sit in it (or give their paths)."""

    def __init__(
        self,
        data_dir: str = "data/imagenet",
        train_list: str = "ImageNet_LT_train.txt",
        val_list: str | None = "ImageNet_LT_val.txt",
        test_list: str = "ImageNet_LT_test.txt",
        num_classes: int = 1000,
        **kwargs,
    ):
        super().__init__(data_dir, train_list, test_list, num_classes, val_list=val_list, **kwargs)


class PlacesLT(FileListDataModule):
    """Places-LT (module docstring): ``data_dir`` is the ``places365_standard`` folder (holding
    ``train/<scene>/`` and ``val/<scene>/``) the lists of Liu et al. 2019 are relative to, and the
    lists sit in it (or give their paths)."""

    def __init__(
        self,
        data_dir: str = "data/places365",
        train_list: str = "Places_LT_train.txt",
        val_list: str | None = "Places_LT_val.txt",
        test_list: str = "Places_LT_test.txt",
        num_classes: int = 365,
        **kwargs,
    ):
        super().__init__(data_dir, train_list, test_list, num_classes, val_list=val_list, **kwargs)


def read_coco_annotations(path: Path, root: Path) -> tuple[list[Path], np.ndarray, dict[int, str]]:
    """``(image paths, category ids, {id: name})`` of an iNaturalist JSON; errors name what is wrong."""
    if not path.is_file():
        raise MissingFile(f"annotation file '{path}' not found; iNaturalist 2018 ships train2018.json and val2018.json")
    try:
        data = json.loads(path.read_text())
        files = {image["id"]: image["file_name"] for image in data["images"]}
        pairs = [(files[a["image_id"]], int(a["category_id"])) for a in data["annotations"]]
        names = {int(c["id"]): str(c.get("name", c["id"])) for c in data.get("categories", [])}
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise BadValue(
            f"'{path}' is not an iNaturalist (COCO-style) annotation file: {type(error).__name__} {error}; expected "
            "'images' [{id, file_name}], 'annotations' [{image_id, category_id}] and 'categories' [{id, name}]"
        ) from error
    paths = [root / name for name, _ in pairs]
    check_images_exist(paths, f"{path} lists")
    return paths, np.asarray([c for _, c in pairs], dtype=np.int64), names


class INaturalist2018(FileListDataModule):
    """iNaturalist 2018 (module docstring): ``data_dir`` holds the JSON files and the
    ``train_val2018/`` image tree their ``file_name`` s point into."""

    def __init__(
        self,
        data_dir: str = "data/inaturalist2018",
        train_json: str = "train2018.json",
        test_json: str = "val2018.json",
        num_classes: int = 8142,
        **kwargs,
    ):
        super().__init__(data_dir, train_json, test_json, num_classes, val_list=None, **kwargs)

    def read_part(self, part: str) -> tuple[list[Path], np.ndarray]:
        paths, labels, self.category_names = read_coco_annotations(self.list_path(part), self.data_dir)
        bad = labels[(labels < 0) | (labels >= self.classes)]
        if len(bad):
            raise BadValue(f"{self.list_path(part)}: category ids {sorted(set(bad.tolist()))[:5]} are outside 0..{self.classes - 1}")
        return paths, labels

    def load_data(self) -> DatasetParts:
        paths, labels = self.read_part("train")
        present = set(labels.tolist())
        missing = [c for c in range(self.classes) if c not in present]
        if missing:
            raise BadValue(f"{self.list_path('train')}: categories {missing[:10]} have no training images")
        names = [self.category_names.get(c, str(c)) for c in range(self.classes)]
        test_paths, test_labels = self.read_part("test")
        return DatasetParts(names, DataPart(labels, paths), DataPart(test_labels, test_paths))
