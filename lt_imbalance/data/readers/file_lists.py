"""List files (``<relative path> <label>`` lines) and iNaturalist's COCO-style JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from lt_imbalance.errors import BadValue, MissingFile

#: how many missing images an error names before it counts the rest
MISSING_SHOWN = 5


def read_file_list(list_path: Path, root: Path, num_classes: int | None = None) -> tuple[list[Path], np.ndarray]:
    """``(image paths, labels)`` of a ``<relative path> <label>`` list; errors name the file and line,
    labels out of ``[0, num_classes)`` and missing images (the first few, then a count)."""
    if not list_path.is_file():
        raise MissingFile(f"list file '{list_path}' not found; it lists '<image path relative to {root}> <label>' per line")
    paths, labels = [], []
    for number, line in enumerate(list_path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2 or not fields[1].lstrip("-").isdigit():
            raise BadValue(f"{list_path}, line {number}: expected '<relative image path> <integer label>', got {line!r}")
        label = int(fields[1])
        if label < 0 or (num_classes is not None and label >= num_classes):
            raise BadValue(f"{list_path}, line {number}: label {label} is outside 0..{num_classes - 1 if num_classes else 'N-1'}")
        paths.append(root / fields[0].lstrip("/"))
        labels.append(label)
    if not paths:
        raise BadValue(f"list file '{list_path}' lists no images")
    check_images_exist(paths, f"{list_path} lists")
    return paths, np.asarray(labels, dtype=np.int64)


def check_images_exist(paths: list[Path], source: str) -> None:
    """Raise naming the first :data:`MISSING_SHOWN` missing images and counting the rest."""
    missing = [p for p in paths if not p.is_file()]
    if missing:
        shown = ", ".join(f"'{p}'" for p in missing[:MISSING_SHOWN])
        more = f" and {len(missing) - MISSING_SHOWN} more" if len(missing) > MISSING_SHOWN else ""
        raise MissingFile(
            f"{source} {len(missing)} images that do not exist: {shown}{more}; point data_dir at the image tree the list is relative to"
        )


def folder_class_names(paths: list[Path], labels: np.ndarray, root: Path, num_classes: int) -> list[str]:
    """Class c is named after the folder of its first training image, relative to ``root``, less the
    folders every class shares (``train/n01440764`` -> ``n01440764``)."""
    first: dict[int, Path] = {}
    for path, label in zip(paths, labels.tolist()):
        first.setdefault(label, path.parent)
    missing = [c for c in range(num_classes) if c not in first]
    if missing:
        raise BadValue(f"classes {missing[:10]} have no training images in the list (every class needs at least one)")
    folders = [os.path.relpath(first[c], root) for c in range(num_classes)]
    shared = os.path.commonpath(folders) if num_classes > 1 else ""
    names = [os.path.relpath(f, shared) if shared else f for f in folders]
    return [n.replace(os.sep, "/") for n in names]


def read_coco_annotations(path: Path, root: Path) -> tuple[list[Path], np.ndarray, dict[int, str]]:
    """``(image paths, category ids, {id: name})`` of an iNaturalist JSON; errors name what is wrong."""
    if not path.is_file():
        raise MissingFile(f"annotation file '{path}' not found; iNaturalist 2018 ships train2018.json and val2018.json")
    try:
        data = json.loads(path.read_text())
        files = {image["id"]: image["file_name"] for image in data["images"]}
        pairs = [(files[a["image_id"]], int(a["category_id"])) for a in data["annotations"]]
        names = {int(c["id"]): str(c.get("name", c["id"])) for c in data.get("categories", [])}
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise BadValue(
            f"'{path}' is not an iNaturalist (COCO-style) annotation file: {type(error).__name__} {error}; expected "
            "'images' [{id, file_name}], 'annotations' [{image_id, category_id}] and 'categories' [{id, name}]"
        ) from error
    paths = [root / name for name, _ in pairs]
    check_images_exist(paths, f"{path} lists")
    return paths, np.asarray([c for _, c in pairs], dtype=np.int64), names
