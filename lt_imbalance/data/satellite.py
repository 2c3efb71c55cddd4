"""EuroSAT-LT: Sentinel-2 RGB land-cover tiles (Helber et al. 2019), re-split long-tailed.

Layout: torchvision's ``EuroSAT`` folder, ``<data_dir>/eurosat/2750/<class>/<class>_<n>.jpg``
(10 classes, 2,000-3,000 64x64 RGB JPEGs each; the zip is at
https://madm.dfki.de/files/sentinel/EuroSAT.zip, or ``torchvision.datasets.EuroSAT(download=True)``).
``data_dir`` may also point at ``2750`` itself or at any class-per-folder tree.

EuroSAT is balanced, so: ``test_per_class`` images of every class form a balanced test set, and
the long-tailed training split (exponential, ``imbalance_ratio``) is drawn from the rest with
n_max = the smallest remaining class. Aerial tiles have no canonical orientation, so flips are on.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lt_imbalance.data.base import ValSource
from lt_imbalance.data.files import FileImageDataModule
from lt_imbalance.data.loading_mode import MEMORY_LIMIT_MIB
from lt_imbalance.data.parts import DataPart, DatasetParts
from lt_imbalance.data.readers.folders import list_image_folder
from lt_imbalance.data.samplers import SamplerName
from lt_imbalance.data.splits import Profile, balanced_holdout
from lt_imbalance.errors import MissingFile

SOURCE = "https://madm.dfki.de/files/sentinel/EuroSAT.zip"


class EuroSATLT(FileImageDataModule):
    """EuroSAT RGB, long-tailed training split and balanced test set (module docstring).

    After its own options the signature lists the shared ones of
    :class:`~lt_imbalance.data.files.FileImageDataModule`,
    :class:`~lt_imbalance.data.image.ImageDataModule` and
    :class:`~lt_imbalance.data.base.LongTailedDataModule` (documented there).

    Args:
        data_dir: folder holding ``eurosat/2750`` (torchvision's layout), or the class folders.
        test_per_class: images per class in the balanced test set.
    """

    def __init__(
        self,
        data_dir: str = "data",
        test_per_class: int = 500,
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
        self.data_dir, self.test_per_class = data_dir, test_per_class
        self.root = self._locate(Path(data_dir))

    def load_data(self) -> DatasetParts:
        names, paths, labels = list_image_folder(self.root)
        pool, test = balanced_holdout(labels, len(names), self.test_per_class, self.split_seed + 2)
        return DatasetParts(names, DataPart(labels[pool], [paths[i] for i in pool]), DataPart(labels[test], [paths[i] for i in test]))

    @staticmethod
    def _locate(data_dir: Path) -> Path:
        for root in (data_dir / "eurosat" / "2750", data_dir / "2750", data_dir):
            if root.is_dir() and any(p.is_dir() for p in root.iterdir()):
                return root
        raise MissingFile(
            f"EuroSATLT: no dataset at '{data_dir / 'eurosat' / '2750'}' (expected <class>/<image>.jpg folders, "
            f"torchvision's EuroSAT layout). Download {SOURCE} and unzip it into '{data_dir / 'eurosat'}', or "
            "run torchvision.datasets.EuroSAT(root, download=True) where the internet is reachable."
        )
