"""Random-number-generator state in checkpoints, for exact resumption."""

from __future__ import annotations

import random
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch


class RNGState(pl.Callback):
    """Saves the global generators (torch, CUDA, NumPy, Python ``random``) in every checkpoint and
    restores them on resume, so randomness in the model (dropout, SSL, MixUp draws aside, which are
    seeded per step) continues as in an uninterrupted run. The data order and augmentation do not
    depend on these states (:class:`~lt_imbalance.data.samplers.EpochSampler`). Under DDP the
    checkpoint holds rank 0's states, so only single-process runs resume bit-exactly."""

    def state_dict(self) -> dict[str, Any]:
        """Tensors and plain numbers only, so checkpoints stay loadable with ``weights_only=True``."""
        kind, keys, pos, has_gauss, cached = np.random.get_state()
        version, internal, gauss_next = random.getstate()
        state = {
            "torch": torch.get_rng_state(),
            "numpy": {
                "kind": kind,
                "keys": torch.from_numpy(keys.astype(np.int64)),
                "pos": int(pos),
                "has_gauss": int(has_gauss),
                "cached": float(cached),
            },
            "python": {"version": version, "internal": torch.tensor(internal, dtype=torch.int64), "gauss_next": gauss_next},
        }
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        torch.set_rng_state(state_dict["torch"])
        n = state_dict["numpy"]
        np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
        p = state_dict["python"]
        random.setstate((p["version"], tuple(p["internal"].tolist()), p["gauss_next"]))
        if "cuda" in state_dict and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])
