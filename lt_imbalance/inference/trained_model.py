"""A trained model read back from its checkpoint alone (a training checkpoint or an ensemble file), for
``predict`` and ``export``."""

from __future__ import annotations

from pathlib import Path

from lt_imbalance.checkpoint_file import checkpoint_path, read_checkpoint
from lt_imbalance.ensemble_classifier import EnsembleClassifier, is_ensemble
from lt_imbalance.errors import UnreadableData
from lt_imbalance.inputs import InputSpec
from lt_imbalance.module import INPUTS_KEY, ImbalancedClassifier


def load_trained(ckpt_path: str | Path) -> tuple[ImbalancedClassifier, InputSpec]:
    """The model of a training checkpoint (in eval mode, on the CPU) and its input description;
    errors say what is wrong."""
    path = checkpoint_path(ckpt_path)
    checkpoint = read_checkpoint(path)
    spec = InputSpec.read(checkpoint.get(INPUTS_KEY))
    if spec is None:
        raise UnreadableData(
            f"'{path}' holds no input description (class names, normalisation): it was written without a data module or "
            "by an older version; retrain with `lt-imbalance fit` (checkpoints now carry it)"
        )
    kind = EnsembleClassifier if is_ensemble(checkpoint) else ImbalancedClassifier
    model = kind.load_from_checkpoint(path, map_location="cpu")
    return model.eval(), spec
