"""The CIFAR python-pickle folders."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch


def unpickle(path: Path) -> dict:
    with open(path, "rb") as f:
        return pickle.load(f, encoding="latin1")


def pickle_images(entry: dict) -> torch.Tensor:
    data = np.asarray(entry["data"], dtype=np.uint8)
    return torch.from_numpy(data.reshape(-1, 3, 32, 32).copy())
