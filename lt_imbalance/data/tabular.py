"""TabularLT: a CSV or Parquet table with a target column, or a real table bundled with a package.

Preprocessing is fitted on the training split only (never on validation or test rows):
numeric columns get median imputation and standardisation (x - mean) / std; categorical columns
(non-numeric by default) get a "missing" category and one-hot encoding, categories unseen in
training encoding to all zeros. The model sees float feature vectors: ``input_shape`` is
``(F,)``, F the number of encoded features, linked into the model's ``input_shape``.

Joint-SSL views are SCARF-style feature corruption (Bahri et al. 2022): each feature of a row is
replaced, with probability ``corruption_rate``, by the same feature of a random training row.

Bundled tables (``builtin``): ``penguins`` (palmerpenguins, 344 penguins, 3 species
152 / 124 / 68, numeric and categorical columns with missing values), ``wine`` and
``breast_cancer`` (scikit-learn).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import Dataset

from lt_imbalance.data.base import LongTailedDataModule, ValSource
from lt_imbalance.data.datasets import FeatureDataset
from lt_imbalance.data.parts import DataPart, DatasetParts
from lt_imbalance.data.readers.tables import Builtin, load_builtin, read_table
from lt_imbalance.data.samplers import SamplerName
from lt_imbalance.data.splits import Profile, stratified_holdout
from lt_imbalance.errors import BadValue
from lt_imbalance.inputs import InputSpec

if TYPE_CHECKING:
    import pandas as pd


class FeatureCorruption:
    """A SCARF view: each feature is replaced with probability ``rate`` by that feature of a random training row."""

    def __init__(self, train_features: torch.Tensor, rate: float):
        if not 0 <= rate <= 1:
            raise BadValue(f"corruption_rate must lie in [0, 1], got {rate}")
        self.train_features, self.rate = train_features, rate

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n, width = self.train_features.shape
        donors = self.train_features[torch.randint(n, (width,)), torch.arange(width)]
        mask = torch.rand(width) < self.rate
        return torch.where(mask, donors, x)


@dataclass(frozen=True)
class RawTable:
    """A table as read: the pool and test frames (feature columns only), their labels, the class names."""

    pool: pd.DataFrame
    pool_labels: np.ndarray
    test: pd.DataFrame
    test_labels: np.ndarray
    class_names: list[str]


class TabularLT(LongTailedDataModule):
    """A classification table at its natural distribution or re-split long-tailed.

    After its own options the signature lists the shared ones of
    :class:`~lt_imbalance.data.base.LongTailedDataModule` (documented there).

    Args:
        path: a ``.csv`` or ``.parquet`` file (or use ``builtin``).
        builtin: ``penguins``, ``wine`` or ``breast_cancer`` (bundled, no download).
        target: the label column (set by ``builtin``).
        categorical: columns to one-hot encode (default: the non-numeric ones).
        drop_columns: columns to ignore (ids, leaks).
        test_path: optional separate test table with the same columns.
        test_fraction: stratified share held out as test set when ``test_path`` is unset.
        corruption_rate: SCARF corruption probability of the SSL views.
        batch_size: the global batch (default 64 here).
        imbalance_ratio: rho of a long-tailed re-split (default 1: keep the data's own distribution).
        profile: ``none`` by default (the natural distribution); ``exponential`` / ``step`` re-split.
    """

    sample_unit = "rows"

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
            batch_size=batch_size, num_workers=num_workers, imbalance_ratio=imbalance_ratio, profile=profile,
            split_seed=split_seed, val_fraction=val_fraction, val_source=val_source, val_per_class=val_per_class, val_folds=val_folds, val_fold=val_fold,
            ssl_views=ssl_views, sampler=sampler,
        )  # fmt: skip
        if (path is None) == (builtin is None):
            raise BadValue(
                "give exactly one of path (a .csv / .parquet file) and builtin (penguins, wine, breast_cancer); "
                "a table of your own with a config that names a builtin one: add --data.init_args.builtin null"
            )
        if test_path is None and not 0 < test_fraction < 1:
            raise BadValue(f"test_fraction must lie in (0, 1) when no test_path is given, got {test_fraction}")
        if not 0 <= corruption_rate <= 1:
            raise BadValue(f"corruption_rate must lie in [0, 1], got {corruption_rate}")
        self.path, self.builtin, self.target, self.categorical = path, builtin, target, categorical
        self.drop_columns, self.test_path, self.test_fraction, self.corruption_rate = (
            drop_columns,
            test_path,
            test_fraction,
            corruption_rate,
        )

    @cached_property
    def table(self) -> RawTable:
        """The table(s) as read and checked, split into pool and test rows."""
        if self.builtin is not None:
            frame, builtin_target = load_builtin(self.builtin)
            target = self.target or builtin_target
        else:
            frame, target = read_table(Path(self.path)), self.target
        if target is None:
            raise BadValue(f"set target to the label column; the columns are {list(frame.columns)}")
        frame = self._checked(frame, target, self.drop_columns, self.path or self.builtin)
        names = sorted(frame[target].astype(str).unique())
        code = {n: c for c, n in enumerate(names)}
        labels = frame[target].astype(str).map(code).to_numpy(np.int64).copy()
        features = [c for c in frame.columns if c != target]
        if self.test_path is None:
            pool_rows, test_rows = stratified_holdout(labels, len(names), self.test_fraction, self.split_seed + 2)
            return RawTable(frame.iloc[pool_rows][features], labels[pool_rows], frame.iloc[test_rows][features], labels[test_rows], names)
        test = self._checked(read_table(Path(self.test_path)), target, self.drop_columns, self.test_path)
        unseen = sorted(set(test[target].astype(str)) - set(names))
        if unseen:
            raise BadValue(
                f"'{self.test_path}': target classes {unseen} do not occur in the training table; remove those rows or add training data"
            )
        test_labels = test[target].astype(str).map(code).to_numpy(np.int64).copy()
        return RawTable(frame[features], labels, test[features], test_labels, names)

    @property
    def num_classes(self) -> int:
        return len(self.table.class_names)

    def pool_labels(self) -> np.ndarray:
        return self.table.pool_labels

    def load_data(self) -> DatasetParts:
        """Encode the table with preprocessing fitted on the training split's rows only; when
        cross-fitting (``val_folds``), on the rows of every fold (features only, no labels), so that
        the fold models share one input encoding and their bag is one model."""
        table = self.table
        encoder = self._fit_encoder(table.pool.iloc[self.cross_fit_images()], self.categorical)
        self.feature_names = [str(n) for n in encoder.get_feature_names_out()]
        self.preprocessing = preprocessing_spec(encoder)
        return DatasetParts(
            class_names=table.class_names,
            pool=DataPart(table.pool_labels, self._encode(encoder, table.pool)),
            test=DataPart(table.test_labels, self._encode(encoder, table.test)),
        )

    def input_spec(self) -> InputSpec:
        """Tables: the fitted preprocessing as plain numbers (:func:`preprocessing_spec`)."""
        self.parts  # noqa: B018  (fits the preprocessing if nothing has yet)
        return replace(super().input_spec(), kind="table", preprocessing=self.preprocessing)

    def make_dataset(self, part: DataPart, indices: np.ndarray | None, train: bool) -> Dataset:
        features, labels = part.samples, torch.from_numpy(part.labels)
        if indices is not None:
            features, labels = features[torch.from_numpy(indices)], labels[indices]
        views = (
            FeatureCorruption(self.parts.pool.samples[torch.from_numpy(self.split.train_indices)], self.corruption_rate)
            if train and self.ssl_views
            else None
        )
        return FeatureDataset(features, labels, views)

    @staticmethod
    def _checked(table: pd.DataFrame, target: str, drop_columns: list[str] | None, source: str) -> pd.DataFrame:
        if target not in table.columns:
            raise BadValue(f"'{source}' has no target column {target!r}; its columns are {list(table.columns)}")
        unknown = [c for c in drop_columns or [] if c not in table.columns]
        if unknown:
            raise BadValue(f"drop_columns {unknown} are not in '{source}'")
        missing = int(table[target].isna().sum())
        if missing:
            raise BadValue(f"'{source}': {missing} rows have no {target!r} value; remove them or fill them in")
        import pandas as pd

        from lt_imbalance.inference.tables import numeric_column

        for column in table.columns:
            if column != target and column not in (drop_columns or []) and pd.api.types.is_numeric_dtype(table[column]):
                numeric_column(table, column, source)  # an infinite value is refused, naming its row
        return table.drop(columns=drop_columns or []).reset_index(drop=True)

    @staticmethod
    def _fit_encoder(train: pd.DataFrame, categorical: list[str] | None):
        """Median-impute + standardise numeric columns, one-hot categorical ones; fitted on ``train`` only."""
        import pandas as pd
        from sklearn.compose import ColumnTransformer
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

        if categorical is None:
            categorical = [c for c in train.columns if not pd.api.types.is_numeric_dtype(train[c])]
        unknown = [c for c in categorical if c not in train.columns]
        if unknown:
            raise BadValue(f"categorical columns {unknown} are not in the table (columns: {list(train.columns)})")
        numeric = [c for c in train.columns if c not in categorical]
        encoder = ColumnTransformer(
            [
                ("num", make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler()), numeric),
                (
                    "cat",
                    make_pipeline(
                        FunctionTransformer(_as_text, feature_names_out="one-to-one"),
                        OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                    ),
                    categorical,
                ),
            ]
        )
        return encoder.fit(train)

    @staticmethod
    def _encode(encoder, frame: pd.DataFrame) -> torch.Tensor:
        return torch.from_numpy(np.asarray(encoder.transform(frame), dtype=np.float32))


def preprocessing_spec(encoder) -> dict:
    """The fitted preprocessing of :meth:`TabularLT._fit_encoder` as plain values: numeric columns with
    their imputation median, mean and scale; categorical columns with their training categories (in
    one-hot order). :func:`lt_imbalance.inference.tables.encode_table` applies it without scikit-learn."""
    num_columns = [str(c) for c in encoder.transformers_[0][2]]
    cat_columns = [str(c) for c in encoder.transformers_[1][2]]
    spec: dict = {"numeric": {}, "categorical": {}}
    if num_columns:
        imputer, scaler = (step for _, step in encoder.named_transformers_["num"].steps)
        for c, m, mu, sd in zip(num_columns, imputer.statistics_, scaler.mean_, scaler.scale_):
            spec["numeric"][c] = {"median": float(m), "mean": float(mu), "scale": float(sd)}
    if cat_columns:
        onehot = encoder.named_transformers_["cat"].steps[1][1]
        spec["categorical"] = {c: [str(v) for v in cats] for c, cats in zip(cat_columns, onehot.categories_)}
    return spec


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Categorical values as strings, with missing values as their own category."""
    return frame.astype("object").where(frame.notna(), "missing").astype(str)
