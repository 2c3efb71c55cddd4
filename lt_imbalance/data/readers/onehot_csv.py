"""One-hot ground-truth CSVs (ISIC's layout)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from lightning.pytorch.utilities import rank_zero_warn

from lt_imbalance.errors import BadValue, MissingFile


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
