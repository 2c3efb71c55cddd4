"""Medical images: the MedMNIST family (``.npz``) and ISIC-style skin-lesion folders with a CSV.

**MedMNIST** (Yang et al. 2023; https://medmnist.com, files on Zenodo, or ``pip install medmnist``
then ``medmnist save``/``INFO``): one ``<flag>.npz`` per dataset and size (``dermamnist.npz`` for
28 px, ``dermamnist_64.npz``, ``_128``, ``_224`` for MedMNIST+) with the arrays
``{train,val,test}_images`` (``N x H x W`` grey or ``N x H x W x 3`` RGB, uint8) and
``{train,val,test}_labels`` (``N x 1``). The dataset's own train / val / test splits are used;
DermaMNIST (7 classes; melanocytic nevi are about two thirds of it) is naturally imbalanced and
is kept as it is by default. Multi-label sets (ChestMNIST) are refused. The OrganMNIST sets are
never flipped (left and right organs are different classes).

**ISIC-style** (e.g. ISIC 2019, https://challenge.isic-archive.com/data/): a folder of images and
a ground-truth CSV with an image-id column and one 0/1 column per class (one-hot rows), e.g.
``image,MEL,NV,BCC,AK,BKL,DF,VASC,SCC,UNK``. Classes with no positive row (UNK in ISIC 2019) are
dropped with a warning; the test set is a stratified hold-out.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_warn

from lt_imbalance.data.files import IMAGE_SUFFIXES, FileImageDataModule
from lt_imbalance.data.image import ImageDataModule
from lt_imbalance.data.parts import DataPart, DatasetParts
from lt_imbalance.data.splits import Profile, stratified_holdout
from lt_imbalance.errors import BadValue, MissingFile

#: class names of the single-label MedMNIST 2D datasets (from the MedMNIST v2 paper / INFO)
MEDMNIST_CLASSES = {
    "dermamnist": [
        "actinic keratoses",
        "basal cell carcinoma",
        "benign keratosis",
        "dermatofibroma",
        "melanoma",
        "melanocytic nevi",
        "vascular lesions",
    ],
    "bloodmnist": ["basophil", "eosinophil", "erythroblast", "immature granulocytes", "lymphocyte", "monocyte", "neutrophil", "platelet"],
    "pathmnist": [
        "adipose",
        "background",
        "debris",
        "lymphocytes",
        "mucus",
        "smooth muscle",
        "normal colon mucosa",
        "cancer-associated stroma",
        "colorectal adenocarcinoma epithelium",
    ],
    "organamnist": [
        "bladder",
        "femur-left",
        "femur-right",
        "heart",
        "kidney-left",
        "kidney-right",
        "liver",
        "lung-left",
        "lung-right",
        "pancreas",
        "spleen",
    ],
}
NPZ_KEYS = [f"{split}_{kind}" for split in ("train", "val", "test") for kind in ("images", "labels")]


def read_medmnist(path: Path) -> dict[str, tuple[torch.Tensor, np.ndarray]]:
    """``{split: (uint8 images [N, C, H, W], labels [N])}``; errors name the file and what is wrong."""
    if not path.is_file():
        raise MissingFile(
            f"MedMNIST file '{path}' not found; expected e.g. data/dermamnist.npz (28 px) or "
            "data/dermamnist_64.npz (MedMNIST+), from https://medmnist.com or Zenodo."
        )
    try:
        arrays = np.load(path)
    except (OSError, ValueError) as err:
        raise BadValue(f"'{path}' is not a readable .npz file: {err}") from err
    missing = [k for k in NPZ_KEYS if k not in arrays.files]
    if missing:
        raise BadValue(f"'{path}' lacks the arrays {missing}; a MedMNIST file has {NPZ_KEYS}")
    out = {}
    for split in ("train", "val", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if labels.ndim == 2 and labels.shape[1] > 1:
            raise BadValue(
                f"'{path}' is multi-label ({labels.shape[1]} label columns, e.g. ChestMNIST); only single-label data is supported"
            )
        if images.ndim == 3:
            images = images[:, None]
        elif images.ndim == 4 and images.shape[-1] in (1, 3):
            images = images.transpose(0, 3, 1, 2)
        else:
            raise BadValue(f"'{path}': {split}_images has shape {images.shape}; expected N x H x W or N x H x W x 3")
        if len(images) != len(labels):
            raise BadValue(f"'{path}': {len(images)} {split} images but {len(labels)} labels")
        out[split] = (torch.from_numpy(np.ascontiguousarray(images, dtype=np.uint8)), labels.reshape(-1).astype(np.int64))
    return out


class MedMNISTLT(ImageDataModule):
    """A single-label MedMNIST dataset with its own train / val / test splits.

    Args:
        path: the ``.npz`` file, e.g. ``data/dermamnist.npz``.
        class_names: optional; known for dermamnist, bloodmnist, pathmnist, organamnist (from the
            file name), else ``0..C-1``.
        imbalance_ratio: rho of a long-tailed re-split (default 1: keep the data's own distribution).
        profile: ``none`` by default (the natural distribution); ``exponential`` / ``step`` re-split.
        val_fraction: must stay 0: the dataset's own validation split is used.
        **kwargs: the arguments of :class:`~lt_imbalance.data.image.ImageDataModule` and
            :class:`~lt_imbalance.data.base.LongTailedDataModule`.
    """

    has_official_val = True

    def __init__(
        self,
        path: str = "data/dermamnist.npz",
        class_names: list[str] | None = None,
        imbalance_ratio: float = 1.0,
        profile: Profile = "none",
        val_fraction: float = 0.0,
        **kwargs,
    ):
        super().__init__(imbalance_ratio=imbalance_ratio, profile=profile, val_fraction=val_fraction, **kwargs)
        self.path, self.given_class_names = path, class_names
        self.flag = Path(path).stem.split("_")[0].lower()
        self.hflip = not self.flag.startswith("organ")  # left and right organs are different classes

    def load_data(self) -> DatasetParts:
        parts = read_medmnist(Path(self.path))
        num_classes = int(max(labels.max() for _, labels in parts.values())) + 1
        names = self.given_class_names or MEDMNIST_CLASSES.get(self.flag) or [str(c) for c in range(num_classes)]
        if len(names) != num_classes:
            raise BadValue(f"{len(names)} class names given but '{self.path}' has {num_classes} classes")
        pool, val, test = (DataPart(parts[s][1], parts[s][0]) for s in ("train", "val", "test"))
        return DatasetParts(names, pool, test, val)


def read_onehot_csv(path: Path, image_column: str, class_columns: Sequence[str] | None) -> tuple[list[str], list[str], np.ndarray]:
    """``(class names, image ids, labels)`` from a one-hot ground-truth CSV."""
    if not path.is_file():
        raise MissingFile(f"ground-truth CSV '{path}' not found; expected columns '{image_column},<class 1>,<class 2>,...'")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        rows = list(reader)
    if image_column not in header:
        raise BadValue(f"'{path}' has no image column {image_column!r}; its columns are {header}. Set image_column.")
    columns = list(class_columns) if class_columns else [c for c in header if c != image_column]
    unknown = [c for c in columns if c not in header]
    if unknown:
        raise BadValue(f"class columns {unknown} are not in '{path}' (columns: {header})")
    try:
        onehot = np.array([[float(r[c]) for c in columns] for r in rows])
    except (TypeError, ValueError) as err:
        raise BadValue(f"'{path}': class columns {columns} must hold 0/1 values ({err})") from err
    bad = np.flatnonzero(np.abs(onehot.sum(1) - 1) > 1e-6) if len(rows) else []
    if len(bad):
        row = bad[0]
        raise BadValue(
            f"'{path}', data row {row + 1} ({rows[row][image_column]}): the class columns {columns} sum to "
            f"{onehot[row].sum():g}, not 1; each row must mark exactly one class (or list the right class_columns)."
        )
    empty = [c for c, n in zip(columns, onehot.sum(0)) if n == 0]
    if empty:
        rank_zero_warn(f"'{path}': dropping class columns with no images: {empty}")
        keep = [i for i, c in enumerate(columns) if c not in empty]
        columns, onehot = [columns[i] for i in keep], onehot[:, keep]
    return columns, [r[image_column] for r in rows], onehot.argmax(1).astype(np.int64)


class ISICLT(FileImageDataModule):
    """ISIC-style skin-lesion images: ``image_dir/<id><suffix>`` plus a one-hot ground-truth CSV.

    Args:
        image_dir: folder of the images.
        labels_csv: ground-truth CSV (``image`` column + one 0/1 column per class).
        image_column: name of the image-id column.
        class_columns: the class columns to use (default: every other column).
        test_fraction: stratified share held out as the test set.
        batch_size: the global batch (default 64 here).
        imbalance_ratio: rho of a long-tailed re-split (default 1: keep the data's own distribution).
        profile: ``none`` by default (the natural distribution); ``exponential`` / ``step`` re-split.
        **kwargs: the arguments of :class:`~lt_imbalance.data.files.FileImageDataModule`,
            :class:`~lt_imbalance.data.image.ImageDataModule` and
            :class:`~lt_imbalance.data.base.LongTailedDataModule`.
    """

    def __init__(
        self,
        image_dir: str = "data/ISIC_2019_Training_Input",
        labels_csv: str = "data/ISIC_2019_Training_GroundTruth.csv",
        image_column: str = "image",
        class_columns: list[str] | None = None,
        test_fraction: float = 0.2,
        batch_size: int = 64,
        imbalance_ratio: float = 1.0,
        profile: Profile = "none",
        **kwargs,
    ):
        super().__init__(batch_size=batch_size, imbalance_ratio=imbalance_ratio, profile=profile, **kwargs)
        if not 0 < test_fraction < 1:
            raise BadValue(f"test_fraction must lie in (0, 1), got {test_fraction}")
        self.image_dir, self.labels_csv, self.image_column = image_dir, labels_csv, image_column
        self.class_columns, self.test_fraction = class_columns, test_fraction

    def load_data(self) -> DatasetParts:
        names, ids, labels = read_onehot_csv(Path(self.labels_csv), self.image_column, self.class_columns)
        folder = Path(self.image_dir)
        if not folder.is_dir():
            raise MissingFile(f"image folder '{folder}' not found; expected '{folder}/<{self.image_column}>.jpg' for every CSV row")
        by_stem = {p.stem: p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
        missing = [i for i in ids if i not in by_stem]
        if missing:
            raise MissingFile(f"{len(missing)} images listed in '{self.labels_csv}' are not in '{folder}', e.g. {missing[:3]}")
        paths = [by_stem[i] for i in ids]
        pool, test = stratified_holdout(labels, len(names), self.test_fraction, self.split_seed + 2)
        return DatasetParts(names, DataPart(labels[pool], [paths[i] for i in pool]), DataPart(labels[test], [paths[i] for i in test]))
