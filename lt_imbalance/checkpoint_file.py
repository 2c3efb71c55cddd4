"""Reading a training checkpoint outside of ``Trainer.fit`` (prediction, export, a second stage)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from lt_imbalance.errors import BadValue, MissingFile
from lt_imbalance.rundir import newest_last_checkpoint


def checkpoint_path(path: str | Path) -> Path:
    """``path`` itself, or for a folder (a run, or a ``default_root_dir`` of several runs) the most
    recently written ``last.ckpt`` below it; errors say what exists."""
    path = Path(path)
    if path.is_dir():
        last = newest_last_checkpoint(path)
        if last is not None:
            return last
        found = sorted(str(p.relative_to(path)) for p in path.rglob("*.ckpt"))[:5]
        raise MissingFile(f"no last.ckpt under '{path}' (other checkpoints in it: {found or 'none'}); train that run first")
    if not path.is_file():
        raise MissingFile(
            f"checkpoint '{path}' not found; give the path of a checkpoint that training wrote (<run>/checkpoints/last.ckpt), or its run folder"
        )
    return path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The contents of a Lightning checkpoint (tensors and plain data only), on the CPU."""
    path = checkpoint_path(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise BadValue(
            f"'{path}' cannot be read as a checkpoint ({type(err).__name__}: {str(err).splitlines()[0][:200]}): it may be "
            "truncated (an interrupted save or copy) or another kind of file; copy it again, or use another checkpoint"
        ) from err
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint or "hyper_parameters" not in checkpoint:
        raise BadValue(f"'{path}' is not a Lightning checkpoint of an lt_imbalance model (no state_dict / hyper_parameters)")
    return checkpoint


def check_fits(path: str | Path, num_classes: int, input_shape: tuple[int, ...] | None, what: str) -> None:
    """Refuse a checkpoint trained on another number of classes or another input shape than ``what``
    (the data of this run, named in the message) gives, before anything runs."""
    hyper_parameters = read_checkpoint(path)["hyper_parameters"]
    saved_counts, saved_shape = hyper_parameters.get("class_counts"), hyper_parameters.get("input_shape")
    if saved_counts is not None and len(saved_counts) != num_classes:
        raise BadValue(
            f"checkpoint '{path}' was trained on {len(saved_counts)} classes, but {what} has {num_classes}; "
            "give the data the model was trained on, or a checkpoint trained on this data"
        )
    if saved_shape is not None and input_shape is not None and tuple(saved_shape) != tuple(input_shape):
        raise BadValue(
            f"checkpoint '{path}' takes inputs of shape {tuple(saved_shape)}, but {what} gives {tuple(input_shape)}; "
            "set the data's image size / channels as in training, or use a checkpoint trained on this data"
        )
