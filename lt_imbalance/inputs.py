"""The model's input, with one owner (the outputs' owner is :mod:`lt_imbalance.post_processor`).

- :class:`InputSpec`: a frozen description of what the model takes (shape, channels, resize size,
  normalisation, class names and counts, the fitted table preprocessing). The data module writes
  it; the module keeps it in every checkpoint; ``predict`` and ``export`` read it from there.
- :class:`Preprocessor`: a raw sample batch -> the network's input, built from an ``InputSpec``:

      images:  x -> (x / 255 - mean_c) / std_c    (x: uint8 or float pixel values 0..255, per channel c)
      tables:  x -> x                             (rows arrive encoded, :mod:`lt_imbalance.inference.tables`)

  The data module's evaluation and training batches, ``predict`` and the exported graph all apply
  this one module, so the formula is written once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from lt_imbalance.errors import BadValue


@dataclass(frozen=True)
class InputSpec:
    """What the model's inputs are and how a raw sample becomes one.

    Args:
        kind: ``image`` or ``table``.
        input_shape: one input without the batch dimension, ``(C, H, W)`` or ``(F,)``.
        class_names: class c is ``class_names[c]``.
        class_counts: training samples per class.
        sample_unit: what one sample is, in messages (``images``, ``rows``).
        mean: per-channel mean on the [0, 1] scale (images).
        std: per-channel standard deviation on the [0, 1] scale (images).
        resize_size: images: the shorter side is resized to this before the centre crop.
        preprocessing: tables: the fitted encoding of the raw columns.

    Examples:
        >>> spec = InputSpec("image", (1, 8, 8), ("a", "b"), (10, 2), mean=(0.5,), std=(0.25,))
        >>> Preprocessor(spec)(torch.full((1, 1, 8, 8), 255, dtype=torch.uint8))[0, 0, 0, 0].item()
        2.0
    """

    kind: Literal["image", "table"]
    input_shape: tuple[int, ...]
    class_names: tuple[str, ...]
    class_counts: tuple[int, ...]
    sample_unit: str = "images"
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    resize_size: int | None = None
    preprocessing: Mapping[str, Any] | None = field(default=None, hash=False)

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "input_shape", tuple(int(n) for n in self.input_shape))
        set_(self, "class_names", tuple(str(n) for n in self.class_names))
        set_(self, "class_counts", tuple(int(n) for n in self.class_counts))
        for name in ("mean", "std"):
            value = getattr(self, name)
            set_(self, name, tuple(float(v) for v in value) if value is not None else None)
        if self.kind not in ("image", "table"):
            raise BadValue(f"InputSpec.kind must be 'image' or 'table', got {self.kind!r}")
        if self.kind == "image" and (self.mean is None or self.std is None or len(self.mean) != self.input_shape[0]):
            raise BadValue(f"an image InputSpec needs one mean and std per channel ({self.input_shape[0]}), got {self.mean}, {self.std}")

    @property
    def images(self) -> bool:
        return self.kind == "image"

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def as_dict(self) -> dict[str, Any]:
        """Plain values (lists, not tuples), e.g. for JSON."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> InputSpec:
        """From :meth:`as_dict`'s values, or the plain dict that checkpoints of earlier versions hold."""
        known = {k: values[k] for k in cls.__dataclass_fields__ if k in values}
        known.setdefault("kind", "image" if values.get("mean") is not None else "table")
        return cls(**known)

    @classmethod
    def read(cls, stored: InputSpec | Mapping[str, Any] | None) -> InputSpec | None:
        """What a checkpoint holds under the inputs key, as an ``InputSpec`` (``None`` stays ``None``)."""
        if stored is None or isinstance(stored, InputSpec):
            return stored
        return cls.from_dict(stored)


class Preprocessor(nn.Module):
    """Raw inputs -> network inputs (module docstring); for tables the identity.

    Args:
        spec: the input description.

    Examples:
        >>> spec = InputSpec("image", (3, 2, 2), ("a", "b"), (5, 1), mean=(0.5,) * 3, std=(0.5,) * 3)
        >>> Preprocessor(spec)(torch.zeros(1, 3, 2, 2, dtype=torch.uint8)).unique().tolist()
        [-1.0]
    """

    def __init__(self, spec: InputSpec):
        super().__init__()
        self.images = spec.images
        if self.images:
            shape = (1, -1, 1, 1)
            self.register_buffer("mean", torch.tensor(spec.mean, dtype=torch.float32).view(shape), persistent=False)
            self.register_buffer("std", torch.tensor(spec.std, dtype=torch.float32).view(shape), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.images:
            return x
        return (x.float() / 255.0 - self.mean) / self.std


torch.serialization.add_safe_globals([InputSpec])  # checkpoints carry it and load with weights_only=True
