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

from lt_imbalance.data.files import FileImageDataModule, list_image_folder
from lt_imbalance.data.parts import DataPart, DatasetParts
from lt_imbalance.data.splits import balanced_holdout
from lt_imbalance.errors import MissingFile

SOURCE = "https://madm.dfki.de/files/sentinel/EuroSAT.zip"


class EuroSATLT(FileImageDataModule):
    """EuroSAT RGB, long-tailed training split and balanced test set (module docstring).

    Args:
        data_dir: folder holding ``eurosat/2750`` (torchvision's layout), or the class folders.
        test_per_class: images per class in the balanced test set.
        **kwargs: the arguments of :class:`~lt_imbalance.data.files.FileImageDataModule`,
            :class:`~lt_imbalance.data.image.ImageDataModule` and
            :class:`~lt_imbalance.data.base.LongTailedDataModule`.
    """

    def __init__(self, data_dir: str = "data", test_per_class: int = 500, **kwargs):
        super().__init__(**kwargs)
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
