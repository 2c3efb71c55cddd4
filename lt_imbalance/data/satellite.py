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

from pathlib import Path
from typing import Sequence

from lt_imbalance.data.files import FileImageDataModule, list_image_folder
from lt_imbalance.data.samplers import SamplerName
from lt_imbalance.data.splits import Profile, balanced_holdout

SOURCE = "https://madm.dfki.de/files/sentinel/EuroSAT.zip"


class EuroSATLT(FileImageDataModule):
    """EuroSAT RGB, long-tailed training split and balanced test set (module docstring).

    Args:
        data_dir: folder holding ``eurosat/2750`` (torchvision's layout), or the class folders.
        test_per_class: images per class in the balanced test set.
        Image and shared arguments as :class:`~lt_imbalance.data.files.FileImageDataModule`.
    """

    def __init__(
        self,
        data_dir: str = "data",
        test_per_class: int = 500,
        image_size: int = 64,
        in_memory: bool = True,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        batch_size: int = 128,
        num_workers: int = 0,
        augmentation: str = "standard",
        imbalance_ratio: float = 100.0,
        profile: Profile = "exponential",
        split_seed: int = 0,
        val_fraction: float = 0.1,
        ssl_views: bool = False,
        sampler: SamplerName = "random",
        device_data: bool = False,
    ):
        super().__init__(
            image_size, 3, in_memory, mean, std, batch_size=batch_size, num_workers=num_workers,
            augmentation=augmentation, imbalance_ratio=imbalance_ratio, profile=profile, split_seed=split_seed,
            val_fraction=val_fraction, ssl_views=ssl_views, sampler=sampler, device_data=device_data,
        )
        self.data_dir = data_dir
        root = self._locate(Path(data_dir))
        names, paths, labels = list_image_folder(root)
        pool, test = balanced_holdout(labels, len(names), test_per_class, split_seed + 2)
        self._init_files(names, ([paths[i] for i in pool], labels[pool]), ([paths[i] for i in test], labels[test]))

    @staticmethod
    def _locate(data_dir: Path) -> Path:
        for root in (data_dir / "eurosat" / "2750", data_dir / "2750", data_dir):
            if root.is_dir() and any(p.is_dir() for p in root.iterdir()):
                return root
        raise FileNotFoundError(
            f"EuroSATLT: no dataset at '{data_dir / 'eurosat' / '2750'}' (expected <class>/<image>.jpg folders, "
            f"torchvision's EuroSAT layout). Download {SOURCE} and unzip it into '{data_dir / 'eurosat'}', or "
            "run torchvision.datasets.EuroSAT(root, download=True) where the internet is reachable."
        )
