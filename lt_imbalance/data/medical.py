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

from collections.abc import Sequence
from pathlib import Path

from lt_imbalance.data.base import ValSource
from lt_imbalance.data.files import FileImageDataModule
from lt_imbalance.data.image import ImageDataModule
from lt_imbalance.data.loading_mode import MEMORY_LIMIT_MIB
from lt_imbalance.data.parts import DataPart, DatasetParts
from lt_imbalance.data.readers.folders import IMAGE_SUFFIXES
from lt_imbalance.data.readers.medmnist import MEDMNIST_CLASSES, read_medmnist
from lt_imbalance.data.readers.onehot_csv import read_onehot_csv
from lt_imbalance.data.samplers import SamplerName
from lt_imbalance.data.splits import Profile, stratified_holdout
from lt_imbalance.errors import BadValue, MissingFile


class MedMNISTLT(ImageDataModule):
    """A single-label MedMNIST dataset with its own train / val / test splits.

    After its own options the signature lists the shared ones of
    :class:`~lt_imbalance.data.image.ImageDataModule` and
    :class:`~lt_imbalance.data.base.LongTailedDataModule` (documented there).

    Args:
        path: the ``.npz`` file, e.g. ``data/dermamnist.npz``.
        class_names: optional; known for dermamnist, bloodmnist, pathmnist, organamnist (from the
            file name), else ``0..C-1``.
        imbalance_ratio: rho of a long-tailed re-split (default 1: keep the data's own distribution).
        profile: ``none`` by default (the natural distribution); ``exponential`` / ``step`` re-split.
        val_fraction: must stay 0: the dataset's own validation split is used.
    """

    has_official_val = True

    def __init__(
        self,
        path: str = "data/dermamnist.npz",
        class_names: list[str] | None = None,
        augmentation: str = "standard",
        device_data: bool = False,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        batch_size: int = 128,
        num_workers: int = 0,
        imbalance_ratio: float = 1.0,
        profile: Profile = "none",
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


class ISICLT(FileImageDataModule):
    """ISIC-style skin-lesion images: ``image_dir/<id><suffix>`` plus a one-hot ground-truth CSV.

    After its own options the signature lists the shared ones of
    :class:`~lt_imbalance.data.files.FileImageDataModule`,
    :class:`~lt_imbalance.data.image.ImageDataModule` and
    :class:`~lt_imbalance.data.base.LongTailedDataModule` (documented there).

    Args:
        image_dir: folder of the images.
        labels_csv: ground-truth CSV (``image`` column + one 0/1 column per class).
        image_column: name of the image-id column.
        class_columns: the class columns to use (default: every other column).
        test_fraction: stratified share held out as the test set.
        batch_size: the global batch (default 64 here).
        imbalance_ratio: rho of a long-tailed re-split (default 1: keep the data's own distribution).
        profile: ``none`` by default (the natural distribution); ``exponential`` / ``step`` re-split.
    """

    def __init__(
        self,
        image_dir: str = "data/ISIC_2019_Training_Input",
        labels_csv: str = "data/ISIC_2019_Training_GroundTruth.csv",
        image_column: str = "image",
        class_columns: list[str] | None = None,
        test_fraction: float = 0.2,
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
        batch_size: int = 64,
        num_workers: int = 0,
        imbalance_ratio: float = 1.0,
        profile: Profile = "none",
        split_seed: int = 0,
        val_fraction: float = 0.1,
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
