"""Class-per-folder image trees (``<root>/<class name>/**/<image>``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lt_imbalance.errors import BadValue, MissingFile

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def list_image_folder(root: Path, class_names: Sequence[str] | None = None) -> tuple[list[str], list[Path], np.ndarray]:
    """``(class_names, image paths, labels)`` of a class-per-folder tree; errors name the folder and the fix.

    Images may sit anywhere below their class folder. With ``class_names`` given (a test folder),
    class folders may be missing or empty but unknown ones are refused.
    """
    if not root.is_dir():
        raise MissingFile(f"image folder '{root}' not found; expected '{root}/<class name>/<images>'.")
    found = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not found:
        raise BadValue(f"'{root}' has no class sub-folders; expected '{root}/<class name>/<images>'.")
    every_class_needs_images = class_names is None
    if class_names is None:
        class_names = found
    unknown = sorted(set(found) - set(class_names))
    if unknown:
        raise BadValue(f"'{root}' has class folders {unknown} that the training folder does not have.")
    paths, labels = [], []
    for label, name in enumerate(class_names):
        folder = root / name
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []
        if not files and every_class_needs_images:
            raise BadValue(f"class '{name}' has no images in '{folder}' (looked for {sorted(IMAGE_SUFFIXES)}).")
        paths += files
        labels += [label] * len(files)
    return list(class_names), paths, np.asarray(labels, dtype=np.int64)
