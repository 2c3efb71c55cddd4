"""Tiny ImageNet's validation annotations."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lt_imbalance.errors import BadValue, MissingFile


def read_val_annotations(path: Path, wnids: Sequence[str]) -> tuple[list[Path], np.ndarray]:
    """Test files and labels from ``val_annotations.txt``; malformed lines name the file and line."""
    index = {w: c for c, w in enumerate(wnids)}
    paths, labels = [], []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 2:
            raise BadValue(f"{path}, line {number}: expected '<file>\\t<wnid>\\t...', got {line!r}")
        if fields[1] not in index:
            raise BadValue(f"{path}, line {number}: wnid {fields[1]!r} is not in wnids.txt")
        image = path.parent / "images" / fields[0]
        if not image.is_file():
            raise MissingFile(f"{path}, line {number}: image '{image}' does not exist")
        paths.append(image)
        labels.append(index[fields[1]])
    return paths, np.asarray(labels, dtype=np.int64)
