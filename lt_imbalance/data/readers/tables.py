"""Tables: ``.csv`` / ``.parquet`` files and the bundled ones."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from lt_imbalance.errors import BadValue, MissingFile, UnreadableData

if TYPE_CHECKING:
    import pandas as pd

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
    raise BadValue(f"unknown builtin table {name!r}; choose penguins, wine or breast_cancer")


def read_table(path: Path) -> pd.DataFrame:
    import pandas as pd

    if not path.is_file():
        raise MissingFile(f"table '{path}' not found; expected a .csv or .parquet file with one row per sample")
    if path.suffix.lower() == ".csv":
        try:
            frame = pd.read_csv(path)
        except pd.errors.EmptyDataError as err:
            raise UnreadableData(
                f"table '{path}' is empty (no header, no rows); give a CSV with a header line and one row per sample"
            ) from err
    elif path.suffix.lower() in (".parquet", ".pq"):
        frame = pd.read_parquet(path)
    else:
        raise BadValue(f"'{path}': unsupported file type {path.suffix!r}; use .csv or .parquet")
    if frame.empty:
        raise UnreadableData(f"table '{path}' has no rows (columns: {list(frame.columns)}); give one row per sample under the header")
    return frame
