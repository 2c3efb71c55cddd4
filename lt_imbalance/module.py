"""ImbalancedClassifier: the Lightning wrapper that trains a classifier on long-tailed data.

Objective of a training batch ``(x, y[, v1, v2])`` (Shwartz-Ziv et al. 2023, sections 5.2-5.4):

    L = sum_i w_{y_i} l(f(x_i), y_i) / sum_i w_{y_i}  +  lambda * NTXent(g(h(v1)), g(h(v2)))

with l the per-sample supervised loss (``loss``: cross-entropy with class-conditional label
smoothing, Balanced Softmax, LDAM, focal, or any per-sample loss by ``class_path``;
:mod:`lt_imbalance.losses`), w the class weights of ``reweighting`` (1 when off or before its
start epoch: DRW), h the backbone, g the projection head and lambda = ``ssl.weight`` (Joint-SSL;
off at 0). What the model is evaluated and deployed with (post-hoc logit adjustment by
``posthoc_adjust_tau``, the calibration fitted when ``fit`` ends, the class prior the outputs
assume and a target prior) has one owner, ``self.outputs``
(:class:`~lt_imbalance.post_processor.PostProcessor`), saved with the weights.

Built torchgeo-style from three hooks called by ``__init__``; a subclass overrides one of them
(or one of the finer hooks they call) and keeps SAM-A, the label-smoothing schedule and every
callback working:

- :meth:`configure_models`: ``self.net`` (:class:`~lt_imbalance.models.ClassifierNetwork` =
  :meth:`configure_backbone` + :meth:`configure_head`) and ``self.ssl_objective``;
- :meth:`configure_losses`: ``self.criterion`` (:meth:`configure_loss`) and the class weights;
- :meth:`configure_metrics`: the confusion matrices and probability metrics per stage.

What plugins rely on is declared in :mod:`lt_imbalance.contracts`: ``forward_loss(batch)`` (the
whole objective with no side effects; logits come from ``self(x)``), ``nonfinite_step``,
``ascent_sample_weights``, ``criterion``, ``class_counts`` / ``num_classes`` and ``evaluations``
(the latest :class:`~lt_imbalance.metrics.EvaluationResult` per stage). Metrics are logged as
``train/...``, ``val/...``, ``test/...``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from torch import nn

from lt_imbalance.contracts import DescribesInputs, provides
from lt_imbalance.errors import BadValue, TrainingDiverged, UnsupportedCombination
from lt_imbalance.inputs import InputSpec
from lt_imbalance.lightning_compat import attached_trainer
from lt_imbalance.losses import (
    ContrastiveObjective,
    JointSSL,
    LossFactory,
    Reweighting,
    build_loss,
    class_weights,
    weighted_mean,
)
from lt_imbalance.losses.class_counts import log_prior
from lt_imbalance.metrics import EvaluationResult
from lt_imbalance.model_prior import RecipePriors, recipe_priors
from lt_imbalance.models import ClassifierNetwork, build_backbone, build_head, feature_dim
from lt_imbalance.models.compile import compile_backbone
from lt_imbalance.models.heads import HeadName
from lt_imbalance.post_processor import PostProcessor, upgrade_state_dict
from lt_imbalance.stage_metrics import StageMetrics
from lt_imbalance.training.batch_mixing import Mixing, apply_mix, draw_mix, mixed_sample_weights
from lt_imbalance.training.buffers import restore_buffers, snapshot_buffers
from lt_imbalance.training.nonfinite import nonfinite_message
from lt_imbalance.training.optimization import LRSchedule, default_optimizer

#: checkpoint key of the input description (class names, normalisation, table preprocessing)
INPUTS_KEY = "lt_imbalance_inputs"
CompileMode = Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"]
OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]

SETTINGS = (Reweighting, JointSSL, Mixing, LRSchedule)
# settings objects travel inside checkpoints' hyper-parameters; allow them in weights-only loading
torch.serialization.add_safe_globals(list(SETTINGS))


def storable(value: Any) -> bool:
    """Whether a hyper-parameter can travel in a checkpoint that loads with ``weights_only=True``:
    plain values, containers of them, and the settings dataclasses."""
    if value is None or isinstance(value, (bool, int, float, str, *SETTINGS)):
        return True
    if isinstance(value, (list, tuple)):
        return all(storable(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and storable(v) for k, v in value.items())
    return False


class ImbalancedClassifier(pl.LightningModule):
    """Long-tailed classifier.

    Args:
        backbone: a name of :data:`lt_imbalance.models.BACKBONES` or any ``nn.Module`` (e.g. by
            ``class_path`` in YAML) with an integer ``out_features`` attribute.
        backbone_kwargs: extra arguments for a backbone given by name (e.g. ``{width: 2}``).
        head: ``linear`` or ``cosine`` (normalised features and weights, as LDAM's code uses).
        loss: the per-sample supervised loss: a short name of :data:`lt_imbalance.losses.LOSSES`
            (``ce``, ``focal``, ``ldam``, ``logit_adjusted``, ``balanced_softmax``) or a class by
            ``class_path`` whose first argument receives ``class_counts``; label smoothing
            (class-conditional with ``label_smoothing_tail``) is an argument of these losses.
        reweighting: class-weighted mean of the per-sample losses (``kind``, ``beta``,
            ``start_epoch`` > 0 for DRW); composes with any loss.
        ssl: Joint-SSL settings (``weight`` 0 = off, ``temperature``, ``projection_dim``); needs the
            data module's SSL views (the CLI switches them on from ``ssl.weight``).
        mixing: batch-level MixUp / CutMix (``mixup_alpha``, ``cutmix_alpha``; 0 = off).
        posthoc_adjust_tau: evaluate with logits - tau * log prior (post-hoc logit adjustment).
        optimizer: builds the optimiser from the parameters, e.g. ``class_path: torch.optim.SGD``
            with ``init_args: {lr: 0.05, momentum: 0.9}``; default SGD lr 0.1, momentum 0.9, wd 2e-4.
        lr_schedule: ``name`` (``cosine`` / ``constant``), ``warmup_epochs``, ``min_lr_ratio``;
            stepped every optimisation step.
        class_counts: training images per class; linked from the data module by the CLI.
        num_classes: optional; must agree with ``class_counts`` when both are given.
        input_shape: shape of one input without the batch dimension, ``(C, H, W)`` for images or
            ``(F,)`` for feature vectors; linked from the data module by the CLI.
        on_nonfinite_loss: ``stop`` (raise, naming the step and the last checkpoint) or ``skip``
            (no update for that step, every buffer left as it was) when the training loss is NaN
            or infinite on any rank.
        compile: compile the backbone with ``torch.compile`` when training starts (in place, so
            checkpoints keep their keys): ``true`` (default mode) or a mode name such as
            ``reduce-overhead`` (CUDA graphs; on a CPU it falls back to ``default`` with a warning).
            Composes with the SAM callback, Joint-SSL and DDP; on a CPU without a C++ compiler it
            warns and stays eager.
    """

    #: attach the run defaults (:meth:`configure_callbacks`); ``False`` trains without them
    run_defaults: bool = True

    def __init__(
        self,
        backbone: str | nn.Module = "resnet32",
        backbone_kwargs: dict[str, Any] | None = None,
        head: HeadName = "linear",
        loss: str | LossFactory = "ce",
        reweighting: Reweighting = Reweighting(),
        ssl: JointSSL = JointSSL(),
        mixing: Mixing = Mixing(),
        posthoc_adjust_tau: float = 0.0,
        optimizer: OptimizerFactory | None = None,
        lr_schedule: LRSchedule = LRSchedule(),
        class_counts: Sequence[int] | None = None,
        num_classes: int | None = None,
        input_shape: Sequence[int] = (3, 32, 32),
        on_nonfinite_loss: Literal["stop", "skip"] = "stop",
        compile: bool | CompileMode = False,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["backbone"] if isinstance(backbone, nn.Module) else None)
        for name in [k for k, v in self.hparams.items() if not storable(v)]:
            # Python objects (an optimiser factory, a loss class) stay out of checkpoints: the CLI stores
            # them as class paths; in Python, pass them again to load_from_checkpoint
            del self.hparams[name]
        if on_nonfinite_loss not in ("stop", "skip"):
            raise BadValue(f"on_nonfinite_loss must be 'stop' or 'skip', got {on_nonfinite_loss!r}")
        self.class_counts = [int(n) for n in class_counts] if class_counts is not None else None
        self.num_classes = self._resolve_num_classes(num_classes, self.class_counts)
        self.input_shape = tuple(int(n) for n in input_shape)
        self.backbone_spec, self.backbone_kwargs, self.head_name, self.loss_spec = backbone, backbone_kwargs, head, loss
        self.reweighting, self.ssl_settings, self.mixing, self.lr_schedule = reweighting, ssl, mixing, lr_schedule
        self.optimizer_factory = optimizer or default_optimizer
        self.posthoc_adjust_tau, self.on_nonfinite_loss = posthoc_adjust_tau, on_nonfinite_loss
        self.compile_mode = "default" if compile is True else (compile or None)
        self.evaluations: dict[str, EvaluationResult] = {}
        #: what prediction needs to know about the inputs (from the data module; kept in checkpoints)
        self.input_spec: InputSpec | None = None
        self.backbone_compiled = False
        self.configure_models()
        self.configure_losses()
        self.configure_metrics()

    @staticmethod
    def _resolve_num_classes(num_classes: int | None, class_counts: list[int] | None) -> int:
        if class_counts is not None:
            empty = [c for c, n in enumerate(class_counts) if n <= 0]
            if empty:
                raise BadValue(f"classes {empty} have no training samples; every class needs at least one.")
            if len(class_counts) < 2:
                raise BadValue(f"the data has {len(class_counts)} class; a classifier needs at least two classes.")
            if num_classes is not None and num_classes != len(class_counts):
                raise BadValue(
                    f"model.num_classes={num_classes} disagrees with the data, which has {len(class_counts)} "
                    "classes; remove model.num_classes (it is taken from the data) or fix it."
                )
            return len(class_counts)
        if num_classes is None or num_classes < 2:
            raise BadValue("give class_counts (linked from the data by the CLI) or num_classes >= 2")
        return num_classes

    # ---- configure_*: what a subclass overrides -------------------------------------------
    def configure_models(self) -> None:
        """``self.net`` = backbone + head, and ``self.ssl_objective`` (projection head + NT-Xent) when Joint-SSL is on."""
        backbone = self.configure_backbone()
        width = feature_dim(backbone)
        self.net = ClassifierNetwork(backbone, self.configure_head(width))
        self.ssl_objective = ContrastiveObjective(width, self.ssl_settings) if self.ssl_settings.enabled else None

    def configure_backbone(self) -> nn.Module:
        """The feature extractor: ``backbone`` by name (sized for ``input_shape``) or as given."""
        if isinstance(self.backbone_spec, str):
            return build_backbone(self.backbone_spec, self.input_shape, **(self.backbone_kwargs or {}))
        if self.backbone_kwargs:
            raise UnsupportedCombination("backbone_kwargs only apply to a backbone given by name; put them in its init_args")
        return self.backbone_spec

    def configure_head(self, in_features: int) -> nn.Module:
        """The map from ``in_features``-wide features to ``num_classes`` logits."""
        return build_head(self.head_name, in_features, self.num_classes)

    def configure_losses(self) -> None:
        """``self.criterion`` (per-sample loss), the class weights of re-weighting, and the outputs' owner
        ``self.outputs`` (post-hoc adjustment; assuming the recipe's prior with a random sampler until
        ``fit`` reads the data's sampler)."""
        self.criterion = self.configure_loss()
        self.register_buffer(
            "loss_weights", class_weights(self.class_counts, self.reweighting.kind, self.reweighting.beta), persistent=False
        )
        tau = self.posthoc_adjust_tau
        self.outputs = PostProcessor(self.num_classes, log_prior(self.class_counts) if tau and self.class_counts else None, tau)
        if self.class_counts is not None:
            self.outputs.assume_recipe(self.recipe_priors("random"))

    def recipe_priors(self, sampler: str) -> RecipePriors:
        """The class prior this recipe's outputs assume with ``sampler`` (:mod:`lt_imbalance.model_prior`)."""
        return recipe_priors(self.class_counts, sampler, self.criterion, self.posthoc_adjust_tau, self.reweighting.kind, self.loss_weights)

    def configure_loss(self) -> nn.Module:
        """The per-sample supervised loss (``forward(logits, targets) -> [B]``)."""
        return build_loss(self.loss_spec, self.class_counts)

    def configure_metrics(self) -> None:
        """``self.stage_metrics``: a confusion matrix per stage and the probability metrics (AUROC, ECE) of validation and test."""
        self.stage_metrics = StageMetrics(self.num_classes)

    # ---- model ------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        if self.compile_mode and not self.backbone_compiled:
            self.backbone_compiled = compile_backbone(self.net.backbone, self.compile_mode, self.trainer.strategy.root_device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    @property
    def input_statistics(self) -> tuple[Sequence[float], Sequence[float]] | None:
        """The per-channel (mean, std) the backbone's pretrained weights expect (its
        ``pretrained_statistics``, e.g. :class:`~lt_imbalance.models.TimmBackbone` with ``pretrained``), or None."""
        return getattr(self.net.backbone, "pretrained_statistics", None)

    @property
    def gathers_across_devices(self) -> bool:
        """Joint-SSL's NT-Xent gathers negatives from every device (its gradient is all-reduced)."""
        return self.ssl_objective is not None

    # ---- the objective ----------------------------------------------------------------------
    def compute_loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The supervised objective of a batch: the mean of the criterion's per-sample losses,
        class-weighted once re-weighting is on."""
        losses = self.criterion(logits, targets)
        if losses.shape != targets.shape:
            raise BadValue(
                f"the loss {type(self.criterion).__name__} returned shape {tuple(losses.shape)}; it must return one "
                f"loss per sample (shape {tuple(targets.shape)}), e.g. reduction='none'."
            )
        trainer = attached_trainer(self)
        epoch = trainer.current_epoch if trainer is not None else 0
        reweight = self.loss_weights is not None and epoch >= self.reweighting.start_epoch
        return weighted_mean(losses, targets, self.loss_weights if reweight else None)

    def forward_loss(self, batch: Any) -> dict[str, torch.Tensor]:
        """The training objective of ``batch`` at the current weights, without logging or metric updates:
        ``{"loss", "loss_sup", ["loss_ssl"], "logits"}``."""
        x, y = batch[0], batch[1]
        draw = self.mix_draw(x)
        if draw is not None:
            logits = self(apply_mix(x, draw))
            perm = draw.perm.to(y.device)
            loss_sup = draw.lam * self.compute_loss(logits, y) + (1 - draw.lam) * self.compute_loss(logits, y[perm])
        else:
            logits = self(x)
            loss_sup = self.compute_loss(logits, y)
        out = {"loss": loss_sup, "loss_sup": loss_sup, "logits": logits}
        if self.ssl_objective is not None and self.training:
            if len(batch) < 4:
                raise UnsupportedCombination(
                    "ssl.weight > 0 needs two SSL views per image: set data.init_args.ssl_views: true "
                    "(the CLI links it from model.init_args.ssl.weight)."
                )
            h1, h2 = self.net.features(torch.cat([batch[2], batch[3]])).chunk(2)
            out["loss_ssl"] = self.ssl_objective(h1, h2)
            out["loss"] = loss_sup + self.ssl_settings.weight * out["loss_ssl"]
        return out

    def ascent_sample_weights(self, batch: Any, per_class: torch.Tensor) -> torch.Tensor:
        """SAM-A's weight of every sample of ``batch``: a_{y_i}, or for a mixed batch
        lambda a_{y_i} + (1 - lambda) a_{y_pi(i)} (:mod:`lt_imbalance.training.batch_mixing`)."""
        y = batch[1]
        draw = self.mix_draw(batch[0])
        if draw is None:
            return per_class.to(y.device)[y]
        return mixed_sample_weights(per_class, y, draw.perm.to(y.device), draw.lam)

    def mix_draw(self, x: torch.Tensor):
        """This step's MixUp / CutMix draw in training, else ``None``. Fixed within an optimisation step
        (both SAM passes mix alike), new at every step and rank."""
        if not (self.training and self.mixing.enabled):
            return None
        trainer = attached_trainer(self)
        step, rank = (trainer.global_step, trainer.global_rank) if trainer is not None else (0, 0)
        seed = hash((torch.initial_seed(), step, rank)) % 2**63
        height, width = (x.shape[-2], x.shape[-1]) if x.ndim >= 3 else (1, 1)
        return draw_mix(len(x), height, width, self.mixing.mixup_alpha, self.mixing.cutmix_alpha, seed)

    # ---- steps ------------------------------------------------------------------------------
    def record(self, stage: str, out: dict[str, torch.Tensor], targets: torch.Tensor) -> None:
        """Update the stage's metrics and log the losses of one batch."""
        self.stage_metrics.update(stage, out["logits"], targets, self.outputs)
        on_step = stage == "train"
        log = {"on_step": on_step, "on_epoch": True, "batch_size": len(targets), "sync_dist": not on_step}
        self.log(f"{stage}/loss", out["loss"], prog_bar=on_step, **log)
        if "loss_ssl" in out:
            self.log(f"{stage}/loss_sup", out["loss_sup"], **log)
            self.log(f"{stage}/loss_ssl", out["loss_ssl"], **log)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor | None:
        saved = snapshot_buffers(self) if self.on_nonfinite_loss == "skip" else None
        out = self.forward_loss(batch)
        if self.nonfinite_step(out["loss"], batch_idx):
            restore_buffers(self, saved)  # the forward pass already moved the BatchNorm statistics
            return None  # Lightning then skips backward and the optimizer step
        self.record("train", out, batch[1])
        return out["loss"]

    def nonfinite_step(self, loss: torch.Tensor, batch_idx: int) -> bool:
        """True if ``loss`` is NaN / inf on any rank and the step is to be skipped; raises under ``stop``."""
        bad = not bool(torch.isfinite(loss.detach()).all())
        trainer = attached_trainer(self)
        if trainer is not None:
            bad = trainer.strategy.reduce_boolean_decision(bad, all=False)
        if not bad:
            return False
        if self.on_nonfinite_loss == "skip":
            self.log("train/skipped_nonfinite", 1.0, on_step=True, on_epoch=False, reduce_fx="sum")
            return True
        raise TrainingDiverged(nonfinite_message(trainer, loss, batch_idx))

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.record("val", self.forward_loss(batch), batch[1])

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self.record("test", self.forward_loss(batch), batch[1])

    def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        """Class probabilities, as deployed (:class:`~lt_imbalance.post_processor.PostProcessor`)."""
        return self.outputs(self(batch[0]))

    def _end_epoch(self, stage: str) -> None:
        computed = self.stage_metrics.compute(stage, self.current_epoch, self.class_counts, self.outputs)
        self.evaluations.update(computed)
        result = computed[stage]
        self.log_dict({f"{stage}/{k}": v for k, v in result.metrics.items() if k != "balanced_acc"})
        self.log(f"{stage}/balanced_acc", result.metrics["balanced_acc"], prog_bar=stage == "val")
        if "val_as_trained" in computed:  # a target prior: val/ is the adapted model, this the model as trained
            self.log_dict({f"val_as_trained/{k}": v for k, v in computed["val_as_trained"].metrics.items()})

    def on_train_epoch_end(self) -> None:
        self._end_epoch("train")

    def on_validation_epoch_end(self) -> None:
        self._end_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._end_epoch("test")

    # ---- what prediction needs, kept in checkpoints ------------------------------------------------
    def _record_inputs(self) -> None:
        data = self.trainer.datamodule
        if provides(data, DescribesInputs):
            self.input_spec = InputSpec.read(data.input_spec())

    def on_fit_start(self) -> None:
        self._record_inputs()
        if self.class_counts is not None:  # training evaluates uncalibrated; fit's end calibrates afresh
            self.outputs.assume_recipe(self.recipe_priors(getattr(self.trainer.datamodule, "sampler", "random")))

    def on_test_start(self) -> None:
        self._record_inputs()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.input_spec is not None:
            checkpoint[INPUTS_KEY] = self.input_spec

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.input_spec = InputSpec.read(checkpoint.get(INPUTS_KEY)) or self.input_spec
        upgrade_state_dict(checkpoint, "outputs.", self.num_classes)  # earlier versions kept the calibration beside the weights

    # ---- the run's defaults ---------------------------------------------------------------
    def configure_callbacks(self) -> list[pl.Callback]:
        """The run defaults the trainer lacks (:mod:`lt_imbalance.callbacks.run_defaults`), so that a run
        from Python writes and resumes as the ``lt-imbalance`` command does: results table, figures,
        run metadata, RNG state, calibration when ``fit`` ends, the target-prior table, a resumable
        ``last.ckpt``. ``predict`` gets none; set ``run_defaults = False`` to train without any.
        """
        if not self.run_defaults or self.trainer.state.fn == "predict":  # predicting writes no run files
            return []
        from lt_imbalance.callbacks.run_defaults import run_default_callbacks

        return run_default_callbacks(self.trainer)

    # ---- optimisation -----------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = self.optimizer_factory([p for p in self.parameters() if p.requires_grad])  # frozen parts stay out
        total = int(self.trainer.estimated_stepping_batches)
        epochs = self.trainer.max_epochs if self.trainer.max_epochs and self.trainer.max_epochs > 0 else 1
        scheduler = self.lr_schedule.scheduler(optimizer, total, epochs)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
