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
        raise MissingFile(f"checkpoint '{path}' not found; training writes <run>/checkpoints/last.ckpt")
    return path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The contents of a Lightning checkpoint (tensors and plain data only), on the CPU."""
    path = checkpoint_path(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise BadValue(
            f"'{path}' is not a checkpoint this version can read ({type(err).__name__}: {str(err).splitlines()[0][:200]})"
        ) from err
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint or "hyper_parameters" not in checkpoint:
        raise BadValue(f"'{path}' is not a Lightning checkpoint of an lt_imbalance model (no state_dict / hyper_parameters)")
    return checkpoint
