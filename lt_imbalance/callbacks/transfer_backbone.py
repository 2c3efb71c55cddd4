"""Start from another run's backbone and/or freeze the backbone: fine-tuning, linear probes and the
decoupled two-stage recipe.

**Classifier re-training (cRT; Kang et al. 2020, "Decoupling Representation and Classifier for
Long-Tailed Recognition", section 4)**: stage 1 trains the whole network with instance-balanced
sampling (plain ERM); stage 2 keeps its backbone h fixed, re-initialises the linear classifier W
and trains only W on h's features with class-balanced sampling (every class equally likely in a
batch), a few epochs::

    stage 1:  min_{h, W}  E_{(x, y) ~ data}        CE(W h(x), y)
    stage 2:  min_{W'}    E_{y ~ U(classes), x ~ data|y} CE(W' h(x), y)    (h frozen, W' fresh)

``configs/two_stage/digits_crt.yaml`` is stage 2 for the stage-1 run of ``configs/digits_lt_erm.yaml``.

With ``freeze_backbone`` the backbone's parameters stop requiring gradients (the module's optimizer
only holds the trainable ones) and the backbone stays in evaluation mode during training, so its
BatchNorm statistics stay those of stage 1 (or of pretraining). Resuming a stage-2 run restores its
own weights over the loaded backbone, as for any run.
"""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from lt_imbalance.checkpoint_file import checkpoint_path, read_checkpoint
from lt_imbalance.contracts import HasNetwork, require
from lt_imbalance.errors import BadValue

BACKBONE_PREFIX = "net.backbone."


class TransferBackbone(pl.Callback):
    """Load the backbone weights of a checkpoint before training, and/or freeze the backbone.

    Args:
        checkpoint: a checkpoint (``.ckpt``) or a run folder (its ``checkpoints/last.ckpt``) whose
            backbone weights are loaded; the head keeps its fresh initialisation. ``None``: keep the
            backbone as built (e.g. a pretrained timm model).
        freeze_backbone: train only the head (and any other parameters outside the backbone).

    Examples:
        In a config (stage 2 of cRT)::

            trainer:
              callbacks:
                - class_path: TransferBackbone
                  init_args: {checkpoint: runs/digits_lt_erm/version_0, freeze_backbone: true}
    """

    def __init__(self, checkpoint: str | None = None, freeze_backbone: bool = True):
        self.checkpoint = checkpoint
        self.freeze_backbone = freeze_backbone

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        require(pl_module, HasNetwork, "TransferBackbone", "ImbalancedClassifier")
        backbone = pl_module.net.backbone
        if self.checkpoint is not None:
            if stage == "fit":  # not at the test after fit: that would undo fine-tuning
                self.load_backbone(pl_module, checkpoint_path(self.checkpoint))
        elif self.freeze_backbone and not getattr(backbone, "pretrained", False):
            rank_zero_warn(
                "TransferBackbone freezes a backbone that was neither loaded from a checkpoint nor pretrained: "
                "only the head learns, on random features; give checkpoint: <stage-1 run> or a pretrained backbone"
            )
        if self.freeze_backbone:
            backbone.requires_grad_(False)
            backbone.eval()
            rank_zero_info("TransferBackbone: backbone frozen, in evaluation mode (Lightning's note on modules in eval mode is expected)")

    @staticmethod
    def load_backbone(pl_module: pl.LightningModule, path: Path) -> None:
        state = read_checkpoint(path)["state_dict"]
        weights = {k.removeprefix(BACKBONE_PREFIX): v for k, v in state.items() if k.startswith(BACKBONE_PREFIX)}
        if not weights:
            raise BadValue(f"'{path}' holds no backbone weights (no '{BACKBONE_PREFIX}*' entries); is it an lt_imbalance checkpoint?")
        try:
            pl_module.net.backbone.load_state_dict(weights)
        except RuntimeError as error:
            raise BadValue(
                f"the backbone of '{path}' does not fit this model's backbone ({str(error).splitlines()[1].strip()[:300]}); "
                "use the same backbone (and backbone_kwargs) as the run that wrote it"
            ) from error
        rank_zero_info(f"TransferBackbone: loaded {len(weights)} backbone tensors from {path}")

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.freeze_backbone:  # Lightning puts the whole module in training mode at each epoch
            pl_module.net.backbone.eval()
