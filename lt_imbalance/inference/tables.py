"""Encoding a table for a trained tabular model, from the preprocessing saved in its checkpoint
(:func:`lt_imbalance.data.tabular.preprocessing_spec`), without scikit-learn:

- numeric column: missing values -> the training median, then (x - mean) / scale;
- categorical column: values as text, missing -> "missing", one-hot over the training categories
  (a category unseen in training encodes to all zeros).

Features come in the training order: the numeric columns, then each categorical column's one-hot
block. A column the model needs but the table lacks is refused, naming it; so is a value that is
not a number in a numeric column, or an infinite one, naming its row (no row is predicted from
it silently); a finite value more than :data:`EXTREME_SCALES` training standard deviations from
the training mean is predicted with a warning naming it (:func:`extreme_values`): the model has
seen nothing like it, and its probabilities there are extrapolation.
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


#: a numeric value this many training standard deviations from the training mean is warned about
EXTREME_SCALES = 100.0


def extreme_values(frame: pd.DataFrame, features: np.ndarray, preprocessing: dict, source: str = "the table") -> str | None:
    """A warning naming the first value far outside the training range (:data:`EXTREME_SCALES`), and
    how many rows hold one; ``None`` when there is none. ``features``: :func:`encode_table` of
    ``frame``, whose first columns are the numeric ones in training standard deviations.

    Examples:
        >>> import pandas as pd
        >>> spec = {"numeric": {"x": {"median": 0.0, "mean": 0.0, "scale": 1.0}}, "categorical": {}}
        >>> frame = pd.DataFrame({"x": [0.5, -1e30]})
        >>> extreme_values(frame, encode_table(frame, spec), spec, "t.csv")[:55]
        "'t.csv', row 1 (line 3 of a CSV with a header): column "
    """
    columns = list(preprocessing["numeric"])
    far = np.abs(features[:, : len(columns)]) > EXTREME_SCALES
    rows = np.flatnonzero(far.any(axis=1))
    if not len(rows):
        return None
    row = int(rows[0])
    column = columns[int(np.flatnonzero(far[row])[0])]
    p = preprocessing["numeric"][column]
    return (
        f"'{source}', row {row} (line {row + 2} of a CSV with a header): column {column!r} value {frame[column].iloc[row]!r} lies "
        f"more than {EXTREME_SCALES:g} training standard deviations from the training mean ({p['mean']:.4g} ± {p['scale']:.4g}); "
        f"{len(rows)} such rows are predicted by extrapolation: check those values"
    )


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
