"""TabularLT: a CSV or Parquet table with a target column, or a real table bundled with a package.

Preprocessing is fitted on the training split only (never on validation or test rows):
numeric columns get median imputation and standardisation (x - mean) / std; categorical columns
(non-numeric by default) get a "missing" category and one-hot encoding, categories unseen in
training encoding to all zeros. The model sees float feature vectors (``num_channels`` = their
width, linked into the model's ``in_channels``).

Joint-SSL views are SCARF-style feature corruption (Bahri et al. 2022): each feature of a row is
replaced, with probability ``corruption_rate``, by the same feature of a random training row.

Bundled tables (``builtin``): ``penguins`` (palmerpenguins, 344 penguins, 3 species
152 / 124 / 68, numeric and categorical columns with missing values), ``wine`` and
``breast_cancer`` (scikit-learn).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from torch.utils.data import Dataset

from lt_imbalance.data.base import LongTailedDataModule, seeded
from lt_imbalance.data.samplers import SamplerName
from lt_imbalance.data.splits import Profile, holdout_split

Builtin = Literal["penguins", "wine", "breast_cancer"]


def load_builtin(name: str) -> tuple[pd.DataFrame, str]:
    """``(table, target column)`` of a bundled dataset."""
    if name == "penguins":
        from palmerpenguins import load_penguins

        return load_penguins(), "species"
    if name in ("wine", "breast_cancer"):
        import sklearn.datasets

        bunch = getattr(sklearn.datasets, f"load_{name}")(as_frame=True)
        frame = bunch.frame.copy()
        frame["target"] = [str(bunch.target_names[t]) for t in bunch.target]
        return frame, "target"
    raise ValueError(f"unknown builtin table {name!r}; choose penguins, wine or breast_cancer")


def read_table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise FileNotFoundError(f"table '{path}' not found; expected a .csv or .parquet file with one row per sample")
    if path.suffix.lower() == ".csv":
        return pd.read_csv(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(path)
    raise ValueError(f"'{path}': unsupported file type {path.suffix!r}; use .csv or .parquet")


class FeatureCorruption:
    """A SCARF view: each feature is replaced with probability ``rate`` by that feature of a random training row."""

    def __init__(self, train_features: torch.Tensor, rate: float):
        if not 0 <= rate <= 1:
            raise ValueError(f"corruption_rate must lie in [0, 1], got {rate}")
        self.train_features, self.rate = train_features, rate

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n, width = self.train_features.shape
        donors = self.train_features[torch.randint(n, (width,)), torch.arange(width)]
        mask = torch.rand(width) < self.rate
        return torch.where(mask, donors, x)


class FeatureDataset(Dataset):
    """Float feature rows and labels; ``(x, y)`` or ``(x, y, view, view)`` with ``views``."""

    def __init__(self, features: torch.Tensor, labels: torch.Tensor, views=None):
        self.features, self.labels, self.views = features, labels.long(), views

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, key):
        with seeded(key) as i:
            x = self.features[i]
            if self.views is None:
                return x, self.labels[i]
            return x, self.labels[i], self.views(x), self.views(x)


class TabularLT(LongTailedDataModule):
    """A classification table at its natural distribution or re-split long-tailed.

    Args:
        path: a ``.csv`` or ``.parquet`` file (or use ``builtin``).
        builtin: ``penguins``, ``wine`` or ``breast_cancer`` (bundled, no download).
        target: the label column (set by ``builtin``).
        categorical: columns to one-hot encode (default: the non-numeric ones).
        drop_columns: columns to ignore (ids, leaks).
        test_path: optional separate test table with the same columns.
        test_fraction: stratified share held out as test set when ``test_path`` is unset.
        corruption_rate: SCARF corruption probability of the SSL views.
        Shared arguments as :class:`~lt_imbalance.data.base.LongTailedDataModule`
        (``augmentation`` must stay ``none``: image policies do not apply to tables).
    """

    def __init__(
        self,
        path: str | None = None,
        builtin: Builtin | None = None,
        target: str | None = None,
        categorical: list[str] | None = None,
        drop_columns: list[str] | None = None,
        test_path: str | None = None,
        test_fraction: float = 0.25,
        corruption_rate: float = 0.6,
        batch_size: int = 64,
        num_workers: int = 0,
        augmentation: str = "none",
        imbalance_ratio: float = 1.0,
        profile: Profile = "none",
        split_seed: int = 0,
        val_fraction: float = 0.1,
        ssl_views: bool = False,
        sampler: SamplerName = "random",
    ):
        super().__init__(batch_size, num_workers, augmentation, imbalance_ratio, profile, split_seed, val_fraction, ssl_views, sampler)
        if augmentation != "none":
            raise ValueError(f"TabularLT takes augmentation: none (got {augmentation!r}); tables use SSL feature corruption instead")
        if (path is None) == (builtin is None):
            raise ValueError("give exactly one of path (a .csv / .parquet file) and builtin (penguins, wine, breast_cancer)")
        if builtin is not None:
            table, builtin_target = load_builtin(builtin)
            target = target or builtin_target
        else:
            table = read_table(Path(path))
        if target is None:
            raise ValueError(f"set target to the label column; the columns are {list(table.columns)}")
        self.path, self.builtin, self.target, self.corruption_rate = path, builtin, target, corruption_rate
        table = self._checked(table, target, drop_columns, path or builtin)
        names = sorted(table[target].astype(str).unique())
        labels = table[target].astype(str).map({n: c for c, n in enumerate(names)}).to_numpy(np.int64).copy()
        if test_path is None:
            if not 0 < test_fraction < 1:
                raise ValueError(f"test_fraction must lie in (0, 1) when no test_path is given, got {test_fraction}")
            pool_rows, test_rows = holdout_split(labels, len(names), test_fraction, split_seed + 2)
            pool, test = table.iloc[pool_rows], table.iloc[test_rows]
            pool_labels, test_labels = labels[pool_rows], labels[test_rows]
        else:
            pool, pool_labels = table, labels
            test = self._checked(read_table(Path(test_path)), target, drop_columns, test_path)
            unseen = sorted(set(test[target].astype(str)) - set(names))
            if unseen:
                raise ValueError(f"'{test_path}': target classes {unseen} do not occur in the training table; remove those rows or add training data")
            test_labels = test[target].astype(str).map({n: c for c, n in enumerate(names)}).to_numpy(np.int64).copy()
        features = [c for c in table.columns if c != target]
        self._init_split(pool_labels, names, image_size=0, num_channels=0)
        encoder = self._fit_encoder(pool.iloc[self.train_indices][features], categorical)
        self.num_channels = int(encoder.transform(pool.iloc[:1][features]).shape[1])
        self._pool = (self._encode(encoder, pool[features]), torch.from_numpy(pool_labels))
        self._test = (self._encode(encoder, test[features]), torch.from_numpy(test_labels))
        self.feature_names = [str(n) for n in encoder.get_feature_names_out()]

    @staticmethod
    def _checked(table: pd.DataFrame, target: str, drop_columns: list[str] | None, source: str) -> pd.DataFrame:
        if target not in table.columns:
            raise ValueError(f"'{source}' has no target column {target!r}; its columns are {list(table.columns)}")
        unknown = [c for c in drop_columns or [] if c not in table.columns]
        if unknown:
            raise ValueError(f"drop_columns {unknown} are not in '{source}'")
        missing = int(table[target].isna().sum())
        if missing:
            raise ValueError(f"'{source}': {missing} rows have no {target!r} value; remove them or fill them in")
        return table.drop(columns=drop_columns or []).reset_index(drop=True)

    @staticmethod
    def _fit_encoder(train: pd.DataFrame, categorical: list[str] | None):
        """Median-impute + standardise numeric columns, one-hot categorical ones; fitted on ``train`` only."""

        if categorical is None:
            categorical = [c for c in train.columns if not pd.api.types.is_numeric_dtype(train[c])]
        unknown = [c for c in categorical if c not in train.columns]
        if unknown:
            raise ValueError(f"categorical columns {unknown} are not in the table (columns: {list(train.columns)})")
        numeric = [c for c in train.columns if c not in categorical]
        encoder = ColumnTransformer(
            [
                ("num", make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler()), numeric),
                ("cat", make_pipeline(FunctionTransformer(_as_text, feature_names_out="one-to-one"), OneHotEncoder(handle_unknown="ignore", sparse_output=False)), categorical),
            ]
        )
        return encoder.fit(train)

    @staticmethod
    def _encode(encoder, frame: pd.DataFrame) -> torch.Tensor:
        return torch.from_numpy(np.asarray(encoder.transform(frame), dtype=np.float32))

    def _ssl_transform(self) -> FeatureCorruption:
        return FeatureCorruption(self._pool[0][self.train_indices], self.corruption_rate)

    def _make_dataset(self, part, indices, transform, views=None) -> FeatureDataset:
        features, labels = self._pool if part == "train" else self._test
        if indices is not None:
            features, labels = features[indices], labels[indices]
        return FeatureDataset(features, labels, views)


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Categorical values as strings, with missing values as their own category."""
    return frame.astype("object").where(frame.notna(), "missing").astype(str)
