"""ImbalancedClassifier: backbone + linear head trained with cross-entropy, evaluated per class.

Objective of a training batch ``(x, y[, v1, v2])`` (Shwartz-Ziv et al. 2023, sections 5.2-5.4):

    L = mean_i l(f(x_i), y_i) + lambda * NTXent(g(h(v1)), g(h(v2)))

with l the cross-entropy under class-conditional label smoothing (eps_c from class counts,
:mod:`lt_imbalance.losses.cc_label_smoothing`; uniform when ``label_smoothing_tail`` is unset),
h the backbone, g a SimCLR projection head and lambda = ``ssl_weight`` (Joint-SSL; off at 0).
The specialised baselines of :mod:`lt_imbalance.losses.imbalance` compose with it: ``loss``
(``focal``, ``ldam``, ``logit_adjusted`` = Balanced Softmax at tau 1) changes l, and
``class_weighting`` turns the mean into a class-weighted mean (deferred to
``reweight_start_epoch`` for DRW); ``posthoc_adjust_tau`` adjusts evaluation logits.

Extension surface (what subclasses and callbacks rely on):

- ``per_sample_loss(logits, targets) -> Tensor[B]`` and ``compute_loss(logits, targets, batch)``:
  override either to change the supervised loss without copying the class;
- ``forward_loss(batch) -> {"loss", "loss_sup", ["loss_ssl"], "logits"}``: the whole objective
  with no side effects (the SAM callback evaluates it at perturbed weights); logits come from
  ``self(x)``;
- ``smoothing_scale``: multiplier of the label-smoothing eps, set by the schedule callback;
- ``training_step`` / ``shared_step``: the usual Lightning hooks, small enough to override;
- ``class_counts`` (training images per class) and ``num_classes``;
- ``results[stage]``: after each validation / test epoch, ``{"metrics", "per_class_acc",
  "confusion"}`` for callbacks (plots, tables).

Metrics (see :mod:`lt_imbalance.metrics`) are logged as ``train/...``, ``val/...``, ``test/...``.
"""

from __future__ import annotations

from typing import Any, Literal, Sequence

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from lightly.loss import NTXentLoss
from lightly.models.modules import SimCLRProjectionHead
from torchmetrics.classification import MulticlassConfusionMatrix

from lt_imbalance.losses import cc_label_smoothing_loss, class_smoothing, class_weights, focal_factor, ldam_margins, log_prior, weighted_mean
from lt_imbalance.losses.imbalance import Weighting
from lt_imbalance.metrics import metrics_from_confusion, per_class_accuracy, probability_metrics
from lt_imbalance.mixing import mix_batch
from lt_imbalance.models.backbones import build_backbone, feature_dim
from lt_imbalance.models.compile import compile_backbone
from lt_imbalance.optim import OptimizerName, ScheduleName, build_optimizer, lr_factor

STAGES = ("train", "val", "test")
LossName = Literal["ce", "focal", "ldam", "logit_adjusted"]
CompileMode = Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"]


def nonfinite_message(module: pl.LightningModule, loss: torch.Tensor, batch_idx: int) -> str:
    """What went wrong, where, what to resume from, and how to go on."""
    trainer = module._trainer
    where = f"global step {trainer.global_step} (epoch {trainer.current_epoch}, batch {batch_idx})" if trainer else f"batch {batch_idx}"
    ckpt = None
    if trainer is not None and trainer.checkpoint_callback is not None:
        ckpt = trainer.checkpoint_callback.last_model_path or trainer.checkpoint_callback.best_model_path
    return (
        f"the training loss is {loss.detach().float().item()} at {where}; last good checkpoint: "
        f"{ckpt or 'none written yet'}. Lower the learning rate or check the data for NaN/inf; "
        "model.init_args.on_nonfinite_loss: skip skips such steps instead."
    )


class CosineClassifier(nn.Module):
    """z_c = cos(angle(f, W_c)) = f.W_c / (|f| |W_c|): LDAM's normalised linear layer."""

    def __init__(self, in_features: int, num_classes: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, in_features).uniform_(-1, 1).renorm_(2, 0, 1e-5).mul_(1e5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=1) @ F.normalize(self.weight, dim=1).t()


class ImbalancedClassifier(pl.LightningModule):
    """Long-tailed image classifier.

    Args:
        backbone: a name of :data:`lt_imbalance.models.backbones.BACKBONES` or any ``nn.Module``
            (e.g. by ``class_path`` in YAML) with an integer ``out_features`` attribute.
        backbone_kwargs: extra arguments for a backbone given by name (e.g. ``{width: 2}``).
        class_counts: training images per class; linked from the data module by the CLI.
        num_classes: optional; must agree with ``class_counts`` when both are given.
        in_channels: input channels; linked from the data module by the CLI.
        label_smoothing: label smoothing eps of the largest class (of every class if
            ``label_smoothing_tail`` is unset).
        label_smoothing_tail: eps of the smallest class for class-conditional smoothing.
        label_smoothing_power: exponent p of the interpolation t_c^p.
        ssl_weight: lambda of the Joint-SSL term (0 = off); needs the data module's SSL views.
        ssl_temperature: NT-Xent temperature (0.5 as in the authors' SimCLR code).
        ssl_projection_dim: output width of the projection head (hidden width = feature width).
        mixup_alpha, cutmix_alpha: batch-level MixUp / CutMix of the training images
            (:mod:`lt_imbalance.mixing`); 0 = off; with both on, each batch uses one.
        loss: ``ce``, ``focal`` (``focal_gamma``), ``ldam`` (``ldam_max_margin``, ``ldam_scale``;
            use ``normed_head: true`` as the authors do) or ``logit_adjusted`` (``logit_adjust_tau``;
            1 = Balanced Softmax).
        class_weighting: ``none``, ``inverse`` or ``effective`` (``reweight_beta``), applied from
            ``reweight_start_epoch`` on (> 0 = deferred re-weighting, DRW).
        posthoc_adjust_tau: evaluate with logits - tau * log prior (post-hoc logit adjustment).
        normed_head: cosine classifier (normalised features and weights), as LDAM's code uses.
        optimizer: ``sgd`` or ``adamw``; lr, momentum, nesterov, weight_decay as usual.
        lr_schedule: ``cosine`` or ``constant``, stepped every optimisation step.
        warmup_epochs: linear warm-up length in epochs (may be fractional).
        min_lr_ratio: floor of the cosine schedule as a fraction of lr.
        on_nonfinite_loss: ``stop`` (raise, naming the step and the last checkpoint) or ``skip``
            (no update for that step) when the training loss is NaN or infinite on any rank.
        compile: compile the backbone with ``torch.compile`` when training starts (in place, so
            checkpoints keep their keys); composes with the SAM callback, Joint-SSL and DDP.
            On a CPU without a C++ compiler it warns and stays eager.
        compile_mode: ``torch.compile``'s mode: ``default``, ``reduce-overhead`` (CUDA graphs; on a
            CPU it falls back to ``default`` with a warning) or ``max-autotune``.
    """

    def __init__(
        self,
        backbone: str | nn.Module = "resnet32",
        backbone_kwargs: dict[str, Any] | None = None,
        class_counts: Sequence[int] | None = None,
        num_classes: int | None = None,
        in_channels: int = 3,
        label_smoothing: float = 0.0,
        label_smoothing_tail: float | None = None,
        label_smoothing_power: float = 1.0,
        ssl_weight: float = 0.0,
        ssl_temperature: float = 0.5,
        ssl_projection_dim: int = 128,
        mixup_alpha: float = 0.0,
        cutmix_alpha: float = 0.0,
        loss: LossName = "ce",
        focal_gamma: float = 2.0,
        ldam_max_margin: float = 0.5,
        ldam_scale: float = 30.0,
        logit_adjust_tau: float = 1.0,
        class_weighting: Weighting = "none",
        reweight_beta: float = 0.9999,
        reweight_start_epoch: int = 0,
        posthoc_adjust_tau: float = 0.0,
        normed_head: bool = False,
        optimizer: OptimizerName = "sgd",
        lr: float = 0.1,
        momentum: float = 0.9,
        nesterov: bool = False,
        weight_decay: float = 2e-4,
        lr_schedule: ScheduleName = "cosine",
        warmup_epochs: float = 0.0,
        min_lr_ratio: float = 0.0,
        on_nonfinite_loss: Literal["stop", "skip"] = "stop",
        compile: bool = False,
        compile_mode: CompileMode = "default",
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["backbone"] if isinstance(backbone, nn.Module) else None)
        self.class_counts = [int(n) for n in class_counts] if class_counts is not None else None
        self.num_classes = self._resolve_num_classes(num_classes, self.class_counts)
        if isinstance(backbone, str):
            backbone = build_backbone(backbone, in_channels=in_channels, **(backbone_kwargs or {}))
        elif backbone_kwargs:
            raise ValueError("backbone_kwargs only apply to a backbone given by name; put them in its init_args")
        self.backbone = backbone
        width = feature_dim(backbone)
        self.head = CosineClassifier(width, self.num_classes) if normed_head else nn.Linear(width, self.num_classes)
        tail = label_smoothing if label_smoothing_tail is None else label_smoothing_tail
        if tail != label_smoothing and self.class_counts is None:
            raise ValueError("class-conditional label smoothing (label_smoothing_tail) needs class_counts")
        counts = self.class_counts or [1] * self.num_classes
        self.register_buffer("class_eps", class_smoothing(counts, label_smoothing, tail, label_smoothing_power), persistent=False)
        if loss not in ("ce", "focal", "ldam", "logit_adjusted"):
            raise ValueError(f"unknown loss {loss!r}; choose ce, focal, ldam or logit_adjusted")
        needs_counts = loss in ("ldam", "logit_adjusted") or class_weighting != "none" or posthoc_adjust_tau != 0
        if needs_counts and self.class_counts is None:
            raise ValueError(f"loss={loss!r} / class_weighting={class_weighting!r} / posthoc_adjust_tau need class_counts")
        self.register_buffer("log_prior", log_prior(counts), persistent=False)
        self.register_buffer("ldam_margin", ldam_margins(counts, ldam_max_margin), persistent=False)
        weights = class_weights(counts, class_weighting, reweight_beta)
        self.register_buffer("loss_weights", weights if weights is not None else torch.ones(self.num_classes), persistent=False)
        self.smoothing_scale = 1.0
        if ssl_weight < 0:
            raise ValueError(f"ssl_weight must be >= 0, got {ssl_weight}")
        self.projector = SimCLRProjectionHead(width, width, ssl_projection_dim) if ssl_weight > 0 else None
        self.ssl_loss = NTXentLoss(temperature=ssl_temperature, gather_distributed=True) if ssl_weight > 0 else None
        self.confusion = nn.ModuleDict({f"{s}_cm": MulticlassConfusionMatrix(self.num_classes) for s in STAGES})
        self.probability = nn.ModuleDict({f"{s}_prob": probability_metrics(self.num_classes) for s in ("val", "test")})
        self.results: dict[str, dict[str, Any]] = {}
        self._compiled = False

    @staticmethod
    def _resolve_num_classes(num_classes: int | None, class_counts: list[int] | None) -> int:
        if class_counts is not None:
            empty = [c for c, n in enumerate(class_counts) if n <= 0]
            if empty:
                raise ValueError(f"classes {empty} have no training samples; every class needs at least one.")
            if num_classes is not None and num_classes != len(class_counts):
                raise ValueError(
                    f"model.num_classes={num_classes} disagrees with the data, which has {len(class_counts)} "
                    "classes; remove model.num_classes (it is taken from the data) or fix it."
                )
            return len(class_counts)
        if num_classes is None or num_classes < 2:
            raise ValueError("give class_counts (linked from the data by the CLI) or num_classes >= 2")
        return num_classes

    # ---- model ----------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        if self.hparams.compile and not self._compiled:
            self._compiled = compile_backbone(self.backbone, self.hparams.compile_mode, self.trainer.strategy.root_device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    # ---- loss: override these to change the objective -------------------------------------
    def per_sample_loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The ``loss`` of each sample, with (class-conditional) label smoothing eps_y * smoothing_scale."""
        hp = self.hparams
        if hp.loss == "logit_adjusted":
            logits = logits + hp.logit_adjust_tau * self.log_prior
        elif hp.loss == "ldam":
            margin = F.one_hot(targets, self.num_classes) * self.ldam_margin[targets][:, None]
            logits = hp.ldam_scale * (logits - margin)
        eps = self.class_eps * self.smoothing_scale
        if bool((eps > 0).any()):
            losses = cc_label_smoothing_loss(logits, targets, eps)
        else:
            losses = F.cross_entropy(logits.float(), targets, reduction="none")
        if hp.loss == "focal":
            losses = focal_factor(logits, targets, hp.focal_gamma) * losses
        return losses

    def compute_loss(self, logits: torch.Tensor, targets: torch.Tensor, batch: Any = None) -> torch.Tensor:
        """The supervised objective of a batch: the (class-weighted, once re-weighting is on) mean of
        :meth:`per_sample_loss`."""
        hp = self.hparams
        reweight = hp.class_weighting != "none" and self.current_epoch >= hp.reweight_start_epoch
        return weighted_mean(self.per_sample_loss(logits, targets), targets, self.loss_weights if reweight else None)

    def evaluation_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits used for evaluation and prediction: z - tau * log prior (post-hoc logit adjustment)."""
        tau = self.hparams.posthoc_adjust_tau
        return logits - tau * self.log_prior if tau else logits

    def forward_loss(self, batch: Any) -> dict[str, torch.Tensor]:
        """The training objective of ``batch`` at the current weights, without logging or metric updates."""
        x, y = batch[0], batch[1]
        hp = self.hparams
        if self.training and (hp.mixup_alpha > 0 or hp.cutmix_alpha > 0):
            x, perm, lam = mix_batch(x, hp.mixup_alpha, hp.cutmix_alpha, self._mixing_seed())
            logits = self(x)
            loss_sup = lam * self.compute_loss(logits, y, batch) + (1 - lam) * self.compute_loss(logits, y[perm], batch)
        else:
            logits = self(x)
            loss_sup = self.compute_loss(logits, y, batch)
        out = {"loss": loss_sup, "loss_sup": loss_sup, "logits": logits}
        if self.projector is not None and self.training:
            if len(batch) < 4:
                raise ValueError(
                    "ssl_weight > 0 needs two SSL views per image: set data.init_args.ssl_views: true "
                    "(the CLI links it from model.init_args.ssl_weight)."
                )
            z = self.projector(self.backbone(torch.cat([batch[2], batch[3]])))
            z1, z2 = z.chunk(2)
            out["loss_ssl"] = self.ssl_loss(z1, z2)
            out["loss"] = loss_sup + self.hparams.ssl_weight * out["loss_ssl"]
        return out

    def _mixing_seed(self) -> int:
        """Fixed within an optimisation step (both SAM passes mix alike), new at every step and rank."""
        step = self.trainer.global_step if self._trainer is not None else 0
        rank = self.trainer.global_rank if self._trainer is not None else 0
        return hash((torch.initial_seed(), step, rank)) % 2**63

    # ---- steps ----------------------------------------------------------------------------
    def shared_step(self, batch: Any, stage: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward, loss, logging and confusion-matrix update of one batch; returns ``(loss, logits)``."""
        out = self.forward_loss(batch)
        y = batch[1]
        logits = out["logits"].detach() if stage == "train" else self.evaluation_logits(out["logits"].detach())
        self.confusion[f"{stage}_cm"].update(logits.argmax(1), y)
        if stage != "train":
            self.probability[f"{stage}_prob"].update(logits.float().softmax(1), y)
        on_step = stage == "train"
        log = {"on_step": on_step, "on_epoch": True, "batch_size": len(y), "sync_dist": not on_step}
        self.log(f"{stage}/loss", out["loss"], prog_bar=on_step, **log)
        if "loss_ssl" in out:
            self.log(f"{stage}/loss_sup", out["loss_sup"], **log)
            self.log(f"{stage}/loss_ssl", out["loss_ssl"], **log)
        return out["loss"], out["logits"]

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor | None:
        loss = self.shared_step(batch, "train")[0]
        if self.nonfinite_step(loss, batch_idx):
            return None  # Lightning then skips backward and the optimizer step
        return loss

    def nonfinite_step(self, loss: torch.Tensor, batch_idx: int) -> bool:
        """True if ``loss`` is NaN / inf on any rank and the step is to be skipped; raises under ``stop``."""
        bad = not bool(torch.isfinite(loss.detach()).all())
        if self._trainer is not None:
            bad = self.trainer.strategy.reduce_boolean_decision(bad, all=False)
        if not bad:
            return False
        if self.hparams.on_nonfinite_loss == "skip":
            self.log("train/skipped_nonfinite", 1.0, on_step=True, on_epoch=False, reduce_fx="sum")
            return True
        raise FloatingPointError(nonfinite_message(self, loss, batch_idx))

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.shared_step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self.shared_step(batch, "test")

    def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        """Class probabilities (after post-hoc logit adjustment, when set)."""
        return self.evaluation_logits(self(batch[0])).float().softmax(1)

    def _end_epoch(self, stage: str) -> None:
        confusion = self.confusion[f"{stage}_cm"].compute()
        self.confusion[f"{stage}_cm"].reset()
        metrics = metrics_from_confusion(confusion, self.class_counts)
        if stage != "train":
            metrics.update({k: v.item() for k, v in self.probability[f"{stage}_prob"].compute().items()})
            self.probability[f"{stage}_prob"].reset()
        self.results[stage] = {"metrics": metrics, "per_class_acc": per_class_accuracy(confusion).tolist(), "confusion": confusion.cpu()}
        self.log_dict({f"{stage}/{k}": v for k, v in metrics.items() if k != "balanced_acc"})
        self.log(f"{stage}/balanced_acc", metrics["balanced_acc"], prog_bar=stage == "val")

    def on_train_epoch_end(self) -> None:
        self._end_epoch("train")

    def on_validation_epoch_end(self) -> None:
        self._end_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._end_epoch("test")

    # ---- optimisation ---------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        optimizer = build_optimizer(self.parameters(), hp.optimizer, hp.lr, hp.weight_decay, hp.momentum, hp.nesterov)
        total = int(self.trainer.estimated_stepping_batches)
        epochs = self.trainer.max_epochs if self.trainer.max_epochs and self.trainer.max_epochs > 0 else 1
        warmup = int(round(hp.warmup_epochs * total / epochs))
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: lr_factor(s, warmup, total, hp.lr_schedule, hp.min_lr_ratio)
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
