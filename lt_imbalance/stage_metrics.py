"""The evaluation metrics of each stage, kept apart from the Lightning module that feeds them.

Per stage (train, val, test) one confusion matrix. Validation and test judge the model as it is
deployed (:meth:`~lt_imbalance.post_processor.PostProcessor.deployed`: calibrated, and re-weighted
to the target prior when the outputs have one), so the checkpoint monitor, a tuner's trial values,
``test`` and ``predict`` see the same outputs; they also get the probability metrics (AUROC, ECE,
NLL) of those outputs, the same ECE and NLL uncalibrated once the outputs are calibrated, and,
with a target prior, the confusion matrix of the model as trained (under its own prior p_model)
beside it. :meth:`StageMetrics.compute` turns a stage's accumulated state into
:class:`~lt_imbalance.metrics.EvaluationResult` s and resets it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torchmetrics.classification import MulticlassConfusionMatrix

from lt_imbalance.metrics import EvaluationResult, calibration_metrics, probability_metrics

STAGES = ("train", "val", "test")


class StageMetrics(nn.Module):
    """Confusion matrices and probability metrics per stage (module docstring).

    Args:
        num_classes: C.

    Examples:
        >>> from lt_imbalance.post_processor import PostProcessor
        >>> metrics, outputs = StageMetrics(2), PostProcessor(2)
        >>> metrics.update("train", torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0]), outputs)
        >>> metrics.compute("train", 0, [5, 1], outputs)["train"].metrics["acc"]
        0.5
    """

    def __init__(self, num_classes: int):
        super().__init__()
        self.confusion = nn.ModuleDict({f"{s}_cm": MulticlassConfusionMatrix(num_classes) for s in STAGES})
        self.probability = nn.ModuleDict({f"{s}_prob": probability_metrics(num_classes) for s in ("val", "test")})
        self.uncalibrated = nn.ModuleDict({f"{s}_uncal": calibration_metrics(num_classes) for s in ("val", "test")})
        self.as_trained = nn.ModuleDict({f"{s}_as_trained": MulticlassConfusionMatrix(num_classes) for s in ("val", "test")})

    def update(self, stage: str, logits: torch.Tensor, targets: torch.Tensor, outputs) -> None:
        """One batch of network ``logits``; evaluation stages read them through ``outputs``
        (:class:`~lt_imbalance.post_processor.PostProcessor`), training as they are."""
        logits = logits.detach()
        if stage != "train":
            raw, logits = logits, outputs.deployed(logits)
            self.probability[f"{stage}_prob"].update(logits.float().softmax(1), targets)
            if outputs.calibrated:
                self.uncalibrated[f"{stage}_uncal"].update(outputs.uncalibrated(raw).float().softmax(1), targets)
            if outputs.has_target:
                self.as_trained[f"{stage}_as_trained"].update(outputs.evaluated(raw).argmax(1), targets)
        self.confusion[f"{stage}_cm"].update(logits.argmax(1), targets)

    def compute(self, stage: str, epoch: int, class_counts: Sequence[int] | None, outputs) -> dict[str, EvaluationResult]:
        """``{stage: result}`` (and ``<stage>_as_trained`` for validation and test when the outputs have a
        target prior); the state is reset."""
        confusion = self.confusion[f"{stage}_cm"].compute()
        self.confusion[f"{stage}_cm"].reset()
        extra: dict[str, float] = {}
        results = {}
        if stage != "train":
            extra = {k: v.item() for k, v in self.probability[f"{stage}_prob"].compute().items()}
            self.probability[f"{stage}_prob"].reset()
            if outputs.calibrated:
                extra.update({f"{k}_uncalibrated": v.item() for k, v in self.uncalibrated[f"{stage}_uncal"].compute().items()})
                self.uncalibrated[f"{stage}_uncal"].reset()
        if stage != "train" and outputs.has_target:
            as_trained = self.as_trained[f"{stage}_as_trained"].compute()
            self.as_trained[f"{stage}_as_trained"].reset()
            results[f"{stage}_as_trained"] = EvaluationResult.from_confusion(f"{stage}_as_trained", epoch, as_trained, class_counts)
        results[stage] = EvaluationResult.from_confusion(stage, epoch, confusion, class_counts, extra)
        return results
