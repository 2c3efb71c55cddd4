"""What each plugin needs from the module and the data module, stated as ``typing.Protocol`` s.

Callbacks check their contract once, in ``setup``, with :func:`require`, so a module or data
module that lacks a member gets an error naming it (and the class that has it) before training,
not an ``AttributeError`` in the middle of an epoch. :class:`~lt_imbalance.module.ImbalancedClassifier`
and every :class:`~lt_imbalance.data.LongTailedDataModule` satisfy all of them; a subclass keeps
them by changing only its ``configure_*`` hooks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import torch
from torch import nn
from torch.utils.data import Dataset

from lt_imbalance.errors import BrokenContract
from lt_imbalance.inputs import InputSpec
from lt_imbalance.metrics import EvaluationResult
from lt_imbalance.models.network import ClassifierNetwork


class SharpnessAwareModule(Protocol):
    """What the SAM / SAM-A callback needs."""

    #: training images per class (``None`` when unknown: then only plain SAM, gamma = 0)
    class_counts: Sequence[int] | None
    #: True when the objective mixes samples across devices (NT-Xent's gathered negatives), so a
    #: per-replica ascent is impossible
    gathers_across_devices: bool

    def forward_loss(self, batch: Any) -> dict[str, torch.Tensor]:
        """The full training objective at the current weights, ``{"loss": ..., "logits": ...}``, with the
        class logits computed by calling the module (``self(x)``) and no logging or metric updates."""

    def nonfinite_step(self, loss: torch.Tensor, batch_idx: int) -> bool:
        """True if the step is to be skipped for a NaN / inf loss (raises if the run is to stop)."""

    def ascent_sample_weights(self, batch: Any, class_weights: torch.Tensor) -> torch.Tensor:
        """Per-sample ascent weights of ``batch`` from per-class weights (MixUp-aware)."""


class SmoothedLoss(Protocol):
    """A loss whose label smoothing a schedule may scale."""

    #: multiplier of the configured smoothing eps (1 = as configured)
    smoothing_scale: float


class HasCriterion(Protocol):
    """What the label-smoothing schedule needs: the module's supervised loss."""

    criterion: nn.Module


class EvaluatedModule(Protocol):
    """What the results table and the per-class figures read."""

    class_counts: Sequence[int] | None
    #: the latest evaluation per stage (``train``, ``val``, ``test``)
    evaluations: Mapping[str, EvaluationResult]


class DiagnosableModule(Protocol):
    """What the overfitting and margin diagnostics need: a classifier that maps inputs to logits."""

    class_counts: Sequence[int] | None
    num_classes: int

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...


class DiagnosableData(Protocol):
    """What the diagnostics need from the data module."""

    val_set: Dataset
    test_set: Dataset

    def train_eval_dataset(self, max_per_class: int | None = None, seed: int = 0) -> Dataset:
        """The training split without augmentation, optionally a fixed subset per class."""

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Turn a raw batch on the device into model inputs (e.g. normalise images)."""


class PublishesSummary(Protocol):
    """A callback whose summary numbers the results table prints under the metrics."""

    def summary(self, stage: str) -> dict[str, float]:
        """Summary numbers for ``stage`` (fractions print as %), or ``{}``."""


class DescribesInputs(Protocol):
    """A data module that can say what prediction needs to know about its inputs (saved in checkpoints)."""

    def input_spec(self) -> InputSpec:
        """Class names and counts, input shape, and how a raw sample becomes a model input."""


class HasNetwork(Protocol):
    """What the backbone transfer needs: the plain network, ``net.backbone`` then ``net.head``."""

    net: ClassifierNetwork


class PretrainedInputs(Protocol):
    """A module whose backbone expects inputs normalised as in its pretraining (read by the image
    data modules when their ``mean`` / ``std`` are not given)."""

    #: per-channel ``(mean, std)`` on the [0, 1] scale of the backbone's pretraining data, or None
    input_statistics: tuple[Sequence[float], Sequence[float]] | None


def members(protocol: type) -> list[str]:
    """The attributes and methods a protocol declares."""
    names = [n for klass in protocol.__mro__ if klass not in (object, Protocol) for n in getattr(klass, "__annotations__", {})]
    names += [n for n, v in vars(protocol).items() if callable(v) and not n.startswith("_")]
    if "__call__" in vars(protocol):
        names.append("__call__")
    return list(dict.fromkeys(names))


def provides(obj: Any, protocol: type) -> bool:
    """Whether ``obj`` has every member ``protocol`` declares (for optional capabilities)."""
    return obj is not None and all(hasattr(obj, name) for name in members(protocol))


def require(obj: Any, protocol: type, plugin: str, provider: str) -> None:
    """Raise ``TypeError`` naming what ``obj`` lacks of ``protocol`` (``provider`` is a class that has it)."""
    missing = [name for name in members(protocol) if not hasattr(obj, name)]
    if missing:
        raise BrokenContract(
            f"{plugin} needs {type(obj).__name__} to provide {', '.join(missing)} "
            f"(lt_imbalance.contracts.{protocol.__name__}); {provider} has them."
        )
