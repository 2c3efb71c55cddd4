"""Saving and restoring a module's buffers (BatchNorm running statistics and the like), plain PyTorch.

SAM's descent pass runs the network in training mode at perturbed weights, and a skipped
non-finite step has already run its forward pass: in both cases the running statistics must end
as if that pass had not happened.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


def snapshot_buffers(module: nn.Module) -> list[torch.Tensor]:
    """Copies of every buffer of ``module`` (and its children), in ``module.buffers()`` order."""
    return [b.detach().clone() for b in module.buffers()]


@torch.no_grad()
def restore_buffers(module: nn.Module, snapshot: list[torch.Tensor]) -> None:
    """Write ``snapshot`` (from :func:`snapshot_buffers` of the same module) back in place."""
    for buffer, saved in zip(module.buffers(), snapshot, strict=True):
        buffer.copy_(saved)


@contextmanager
def buffers_restored(module: nn.Module) -> Iterator[None]:
    """Run a block (e.g. a training-mode forward and backward) and leave every buffer as it was."""
    snapshot = snapshot_buffers(module)
    try:
        yield
    finally:
        restore_buffers(module, snapshot)
