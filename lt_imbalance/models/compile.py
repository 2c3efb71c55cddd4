"""Compiling a backbone with ``torch.compile`` (small models on a GPU are launch-bound: kernel
launches, not arithmetic, set their speed).

The backbone is compiled in place (``nn.Module.compile``), so parameter names, checkpoints, the
SAM callback's parameter perturbation and DDP's gradient hooks see the same module as in eager
mode. BatchNorm running statistics are buffers that the compiled graph updates in place, so the
SAM callback's save-and-restore of them works unchanged.

Fallbacks, each with a warning: on a CPU without a C++ compiler (Inductor needs one) the backbone
stays eager; ``reduce-overhead`` (CUDA graphs) on a device other than CUDA compiles in the
``default`` mode.
"""

from __future__ import annotations

import os
import shutil
import warnings

import torch
from torch import nn


def _cpu_compiler() -> str | None:
    for name in (os.environ.get("CXX"), "g++", "c++", "clang++"):
        if name and shutil.which(name):
            return name
    return None


def compile_backbone(backbone: nn.Module, mode: str, device: torch.device) -> bool:
    """Compile ``backbone`` in place for ``device``; returns whether it was compiled."""
    if device.type == "cpu" and _cpu_compiler() is None:
        warnings.warn(
            "model.compile: no C++ compiler found (set CXX or install g++), so the backbone runs eagerly on the CPU.", stacklevel=2
        )
        return False
    if device.type != "cuda" and mode in ("reduce-overhead", "max-autotune"):
        warnings.warn(
            f"model.compile={mode!r} uses CUDA graphs, which need a CUDA device; compiling in the 'default' mode on {device.type}.",
            stacklevel=2,
        )
        mode = "default"
    backbone.compile(mode=mode)
    return True
