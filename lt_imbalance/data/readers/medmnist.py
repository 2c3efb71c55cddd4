"""MedMNIST ``.npz`` files (single-label 2D)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lt_imbalance.errors import BadValue, MissingFile

#: class names of the single-label MedMNIST 2D datasets (from the MedMNIST v2 paper / INFO)
MEDMNIST_CLASSES = {
    "dermamnist": [
        "actinic keratoses",
        "basal cell carcinoma",
        "benign keratosis",
        "dermatofibroma",
        "melanoma",
        "melanocytic nevi",
        "vascular lesions",
    ],
    "bloodmnist": ["basophil", "eosinophil", "erythroblast", "immature granulocytes", "lymphocyte", "monocyte", "neutrophil", "platelet"],
    "pathmnist": [
        "adipose",
        "background",
        "debris",
        "lymphocytes",
        "mucus",
        "smooth muscle",
        "normal colon mucosa",
        "cancer-associated stroma",
        "colorectal adenocarcinoma epithelium",
    ],
    "organamnist": [
        "bladder",
        "femur-left",
        "femur-right",
        "heart",
        "kidney-left",
        "kidney-right",
        "liver",
        "lung-left",
        "lung-right",
        "pancreas",
        "spleen",
    ],
}


NPZ_KEYS = [f"{split}_{kind}" for split in ("train", "val", "test") for kind in ("images", "labels")]


def read_medmnist(path: Path) -> dict[str, tuple[torch.Tensor, np.ndarray]]:
    """``{split: (uint8 images [N, C, H, W], labels [N])}``; errors name the file and what is wrong."""
    if not path.is_file():
        raise MissingFile(
            f"MedMNIST file '{path}' not found; expected e.g. data/dermamnist.npz (28 px) or "
            "data/dermamnist_64.npz (MedMNIST+), from https://medmnist.com or Zenodo."
        )
    try:
        arrays = np.load(path)
    except (OSError, ValueError) as err:
        raise BadValue(f"'{path}' is not a readable .npz file: {err}") from err
    missing = [k for k in NPZ_KEYS if k not in arrays.files]
    if missing:
        raise BadValue(f"'{path}' lacks the arrays {missing}; a MedMNIST file has {NPZ_KEYS}")
    out = {}
    for split in ("train", "val", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if labels.ndim == 2 and labels.shape[1] > 1:
            raise BadValue(
                f"'{path}' is multi-label ({labels.shape[1]} label columns, e.g. ChestMNIST); only single-label data is supported"
            )
        if images.ndim == 3:
            images = images[:, None]
        elif images.ndim == 4 and images.shape[-1] in (1, 3):
            images = images.transpose(0, 3, 1, 2)
        else:
            raise BadValue(f"'{path}': {split}_images has shape {images.shape}; expected N x H x W or N x H x W x 3")
        if len(images) != len(labels):
            raise BadValue(f"'{path}': {len(images)} {split} images but {len(labels)} labels")
        out[split] = (torch.from_numpy(np.ascontiguousarray(images, dtype=np.uint8)), labels.reshape(-1).astype(np.int64))
    return out
