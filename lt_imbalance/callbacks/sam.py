"""SAM / SAM-A as a Lightning callback (Shwartz-Ziv et al. 2023, section 5.3; math in
:mod:`lt_imbalance.training.sam_perturbation`).

How one step runs, inside Lightning's automatic optimisation:

- **ascent pass** = Lightning's own training step (forward, loss, logging and metrics once,
  BatchNorm statistics updated once, backward through DDP / precision as usual). While it runs,
  a hook on the logits scales each sample's logit gradient by a_{y_i} (times a batch constant),
  turning grad of the mean loss into grad of L_a without a third pass. Loss terms that do not flow
  through the logits (the Joint-SSL term) stay unweighted in the ascent. A mixed (MixUp / CutMix)
  sample is weighted lambda a_{y_i} + (1 - lambda) a_{y_pi(i)}. If the step's logits never pass
  through the module's forward (so the weights were never applied), the step raises instead of
  silently running plain SAM.
- ``on_before_optimizer_step`` (after that backward, before gradient clipping): e is computed and
  added to the weights; the **descent pass** calls the plain module (not the DDP wrapper) on the
  same batch: it evaluates the module's ``forward_loss(batch)["loss"]``
  (the full objective, including Joint-SSL) at w + e with BatchNorm running statistics restored
  afterwards and no logging; under DDP its gradients are averaged across ranks; w is restored.
- Lightning then clips the (descent) gradient, steps the optimizer and the LR schedulers, and
  advances ``global_step`` as without SAM. SAM keeps no state a checkpoint needs.

What the module must provide is :class:`lt_imbalance.contracts.SharpnessAwareModule`
(:class:`~lt_imbalance.module.ImbalancedClassifier` and its subclasses do). Refused with the
reason: 16-bit precisions (a gradient scaler's checks bypassed, or bf16 weights too coarse to hold
the perturbation), gradient accumulation, sharded strategies (FSDP, DeepSpeed), and a per-replica
ascent with an objective that gathers across devices (Joint-SSL).
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.strategies import DeepSpeedStrategy, FSDPStrategy
from torch import nn

from lt_imbalance.contracts import SharpnessAwareModule, require
from lt_imbalance.errors import BadValue, UnsupportedCombination
from lt_imbalance.training.buffers import buffers_restored
from lt_imbalance.training.sam_perturbation import Weighting, add_perturbation, ascent_class_weights, perturbation

SUPPORTED_PRECISION = ("32-true", "32", "64-true", "64", "bf16-mixed")


def check_trainer_settings(precision: str, accumulate_grad_batches: int, strategy: Any = None) -> None:
    """Refuse the settings under which the SAM step would be silently wrong."""
    if precision not in SUPPORTED_PRECISION:
        raise UnsupportedCombination(
            f"SAM does not support trainer.precision={precision!r}: with a gradient scaler (16-mixed) the descent "
            "gradient would bypass its inf/NaN checks, and 16-bit weights (16-true, bf16-true) lose most of the "
            "perturbation (w + e rounds back to w). Use 'bf16-mixed' (fp32 weights, same speed on recent GPUs) or '32-true'."
        )
    if isinstance(strategy, (FSDPStrategy, DeepSpeedStrategy)):
        raise UnsupportedCombination(
            f"SAM does not support the {type(strategy).__name__}: the perturbation needs every full parameter and its "
            "gradient on each device, which sharded strategies do not keep (untested). Use strategy: ddp."
        )
    if accumulate_grad_batches > 1:
        raise UnsupportedCombination(
            f"SAM does not support accumulate_grad_batches={accumulate_grad_batches}: the perturbation "
            "would be computed from the accumulated gradient but the descent pass would only see the last "
            "micro-batch. Set accumulate_grad_batches: 1 and choose the batch size directly."
        )


class SAM(pl.Callback):
    """Sharpness-aware minimisation with class-weighted ascent (SAM-A). Add it under ``trainer.callbacks``.

    Args:
        rho: radius of the ascent step.
        gamma: ascent class weights a_c = (n_max / n_c)^gamma; 0 = plain SAM, 1 = SAM-A.
        weighting: ``power`` (the formula above) or ``tail_only`` (ImbSAM: a_c = 1 if n_c < tail_below else 0).
        tail_below: training-image count below which a class is "tail" for ``tail_only``.
        max_weight: optional cap on a_c.
        adaptive: adaptive SAM (ASAM), with ``eta`` added to |w|.
        start_epoch: plain optimizer steps before this epoch (e.g. after warm-up).
        ascent: under DDP, ``global`` all-reduces the ascent gradient (every rank takes the same
            perturbation) or ``per_replica`` perturbs each rank by its own batch. The descent
            gradient is always averaged, so all ranks keep identical weights.
    """

    def __init__(
        self,
        rho: float = 0.05,
        gamma: float = 1.0,
        weighting: Weighting = "power",
        tail_below: int = 20,
        max_weight: float | None = None,
        adaptive: bool = False,
        eta: float = 0.01,
        start_epoch: int = 0,
        ascent: Literal["global", "per_replica"] = "global",
    ):
        if rho < 0:
            raise BadValue(f"SAM rho must be >= 0, got {rho}")
        if ascent not in ("global", "per_replica"):
            raise BadValue(f"SAM ascent must be 'global' or 'per_replica', got {ascent!r}")
        self.rho, self.gamma, self.weighting = rho, gamma, weighting
        self.tail_below, self.max_weight = tail_below, max_weight
        self.adaptive, self.eta, self.start_epoch, self.ascent = adaptive, eta, start_epoch, ascent
        self._weights: torch.Tensor | None = None
        self._batch: Any = None
        self._batch_idx = 0
        self._scale: torch.Tensor | None = None
        self._no_sync = ExitStack()
        self._hook = None
        #: descent passes run so far (one per optimisation step from ``start_epoch`` on)
        self.descent_passes = 0

    # ---- checks and wiring -----------------------------------------------------------------
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        check_trainer_settings(str(trainer.precision), trainer.accumulate_grad_batches, trainer.strategy)
        if not pl_module.automatic_optimization:
            raise BadValue("SAM runs inside Lightning's automatic optimisation; the module has automatic_optimization=False")
        require(pl_module, SharpnessAwareModule, "SAM", "ImbalancedClassifier")
        if trainer.world_size > 1 and self.ascent == "per_replica" and pl_module.gathers_across_devices:
            raise BadValue(
                "SAM(ascent='per_replica') cannot perturb each device by its own batch here: the objective gathers "
                "samples across devices (Joint-SSL's NT-Xent negatives), and their gradient is all-reduced in the "
                "backward pass even under no_sync. Use ascent: global, or switch Joint-SSL off (ssl.weight: 0)."
            )
        self._weights = ascent_class_weights(
            getattr(pl_module, "class_counts", None), self.gamma, self.weighting, self.tail_below, self.max_weight
        )
        if self._weights is not None and self._hook is None:
            self._hook = pl_module.register_forward_hook(self._weight_logit_gradients)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        self._no_sync.close()

    def _active(self, trainer: pl.Trainer) -> bool:
        return trainer.current_epoch >= self.start_epoch

    # ---- ascent pass ---------------------------------------------------------------------
    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int) -> None:
        self._batch = batch if self._active(trainer) else None
        self._batch_idx = batch_idx
        self._scale = None
        if self._batch is None:
            return
        if self._weights is not None:
            a = pl_module.ascent_sample_weights(batch, self._weights)
            total = a.sum()
            if trainer.world_size > 1 and self.ascent == "global":
                total = trainer.strategy.reduce(total, reduce_op="sum") / trainer.world_size
            self._scale = a * len(a) / total.clamp_min(1e-12)
        if trainer.world_size > 1 and self.ascent == "per_replica":
            self._no_sync.enter_context(trainer.strategy.block_backward_sync())

    def _weight_logit_gradients(self, module: nn.Module, inputs: Any, output: Any) -> None:
        """Forward hook on the module: scale the gradient of the batch's logits by a_{y_i} (once per step)."""
        scale = self._scale
        if scale is None or not isinstance(output, torch.Tensor) or not output.requires_grad or output.shape[0] != len(scale):
            return
        self._scale = None
        output.register_hook(lambda grad: grad * scale.to(grad.dtype)[:, None])

    # ---- perturb, descent pass, restore ---------------------------------------------------
    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: torch.optim.Optimizer) -> None:
        self._no_sync.close()
        if self._scale is not None:
            self._batch = self._scale = None
            raise RuntimeError(
                f"SAM-A's class weights were not applied in this step: they act on the gradient of the logits that "
                f"{type(pl_module).__name__}'s forward (self(x)) returns, and this step's loss did not call it. "
                "Compute the logits with self(x) in forward_loss, or use plain SAM (gamma: 0)."
            )
        batch, self._batch = self._batch, None
        if batch is None:
            return
        params = [p for group in optimizer.param_groups for p in group["params"]]
        with_grad = [p for p in params if p.grad is not None]
        originals = [p.detach().clone() for p in with_grad]
        add_perturbation(with_grad, perturbation(with_grad, self.rho, self.adaptive, self.eta))
        for p in params:
            p.grad = None
        try:
            with buffers_restored(pl_module):  # BatchNorm statistics: one update per step, the ascent pass's
                with trainer.precision_plugin.forward_context():
                    loss = pl_module.forward_loss(batch)["loss"]
                if pl_module.nonfinite_step(loss, self._batch_idx):
                    return  # the finally block restores w; no gradients: the optimizer skips every parameter
                loss.backward()  # before the statistics are restored: autograd checks their version
                self.descent_passes += 1
        finally:
            with torch.no_grad():  # restore w exactly (w + e - e is not w in floating point)
                for p, w in zip(with_grad, originals):
                    p.copy_(w)
        if trainer.world_size > 1:
            self._average_gradients(trainer, params)

    @staticmethod
    def _average_gradients(trainer: pl.Trainer, params: list[torch.nn.Parameter]) -> None:
        """All-reduce the descent gradients in one flat buffer (missing gradients count as zero)."""
        for p in params:
            if p.grad is None and p.requires_grad:
                p.grad = torch.zeros_like(p)
        live = [p for p in params if p.grad is not None]
        flat = torch.cat([p.grad.reshape(-1) for p in live])
        flat = trainer.strategy.reduce(flat, reduce_op="mean")
        offset = 0
        for p in live:
            n = p.grad.numel()
            p.grad.copy_(flat[offset : offset + n].view_as(p.grad))
            offset += n
