"""Encoding a table for a trained tabular model, from the preprocessing saved in its checkpoint
(:func:`lt_imbalance.data.tabular.preprocessing_spec`), without scikit-learn:

- numeric column: missing values -> the training median, then (x - mean) / scale;
- categorical column: values as text, missing -> "missing", one-hot over the training categories
  (a category unseen in training encodes to all zeros).

Features come in the training order: the numeric columns, then each categorical column's one-hot
block. A column the model needs but the table lacks is refused, naming it; so is a value that is
not a number in a numeric column, or an infinite one, naming its row (no row is predicted from
it silently).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from lt_imbalance.errors import BadValue

if TYPE_CHECKING:
    import pandas as pd


def numeric_column(frame: pd.DataFrame, column: str, source: str) -> np.ndarray:
    """The float64 values of a numeric ``column`` (missing values as NaN); a value that is not a
    number, or is infinite, is refused with its row (the data row, 0-based, and the CSV line)."""
    import pandas as pd

    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype="float64")
    not_numbers = np.flatnonzero(np.isnan(values) & frame[column].notna().to_numpy())
    infinite = np.flatnonzero(np.isinf(values))
    for rows, what in ((not_numbers, "is not a number"), (infinite, "is infinite")):
        if len(rows):
            row = int(rows[0])
            raise BadValue(
                f"'{source}', row {row} (line {row + 2} of a CSV with a header): column {column!r} value "
                f"{frame[column].iloc[row]!r} {what} ({len(rows)} such rows); fix or drop those rows, or leave the cell empty "
                "(missing values are filled with the training median)"
            )
    return values


def encode_table(frame: pd.DataFrame, preprocessing: dict, source: str = "the table") -> np.ndarray:
    """float32 features ``[N, F]`` of ``frame`` (module docstring)."""
    needed = list(preprocessing["numeric"]) + list(preprocessing["categorical"])
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise BadValue(f"the table lacks the columns {missing} that the model was trained on (its columns: {list(frame.columns)})")
    blocks = []
    for column, p in preprocessing["numeric"].items():
        values = numeric_column(frame, column, source)
        values = np.where(np.isnan(values), p["median"], values)
        blocks.append(((values - p["mean"]) / p["scale"])[:, None])
    for column, categories in preprocessing["categorical"].items():
        text = frame[column].astype("object").where(frame[column].notna(), "missing").astype(str).to_numpy()
        blocks.append((text[:, None] == np.asarray(categories, dtype=object)[None, :]).astype(np.float64))
    return np.concatenate(blocks, axis=1).astype(np.float32) if blocks else np.zeros((len(frame), 0), dtype=np.float32)
