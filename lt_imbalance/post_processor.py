"""The one owner of a trained model's outputs: logits -> what it is evaluated and deployed with.

    evaluated:  z' = (z - tau log pi) / T + b        post-hoc logit adjustment, temperature, class biases
    deployed:   z' + log q - log p_model             re-weighted to a target prior q (none set: z')
    forward:    softmax(deployed)                    the probabilities ``predict`` writes and export computes

softmax(z') is the posterior under p_model, the class prior the outputs assume (from the recipe,
:mod:`lt_imbalance.model_prior`); T and b are fitted on the validation split by :meth:`PostProcessor.fit`
(:mod:`lt_imbalance.calibration`), the re-weighting is :func:`lt_imbalance.label_shift.shift_to_prior`.

T, b, p_model and q are buffers and the record (which calibrator, fitted where, NLL and ECE before
and after) is the module's extra state, so all of it is in the state dict: every checkpoint carries
it (best-k ones included) and ``load_from_checkpoint`` restores it. :func:`upgrade_state_dict` reads
the checkpoints of earlier versions, which kept the record beside the weights.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
from torch import nn

from lt_imbalance.calibration import LEGACY_CALIBRATION_KEY, TRUSTED_PER_CLASS, CalibrationChoice, calibrated_nll, choose_calibrator
from lt_imbalance.errors import BadValue
from lt_imbalance.label_shift import TargetPrior, shift_to_prior
from lt_imbalance.model_prior import RecipePriors

#: said of outputs that no calibration has been fitted for yet
NOT_YET = "saved during training: the calibration is fitted on the validation split for the final weights when `fit` ends"


@dataclass(frozen=True)
class CalibrationRecord:
    """How the outputs were calibrated, in words and numbers (the buffers hold T, b and the priors).

    Args:
        calibrator: one of :data:`lt_imbalance.calibration.CALIBRATORS`.
        prior_source: how p_model was obtained.
        fitted_on: the split the calibrator was chosen and fitted on (``None``: not calibrated).
        not_calibrated: why not (``None`` when calibrated).
        before: ``{"nll", "ece"}`` on ``fitted_on`` without calibration, under the minimised objective.
        after: the same with the calibrator applied.
        held_out: every candidate's held-out NLL, which chose the calibrator.
        rejected: candidates passed over, and why.
        note: a caution (e.g. a validation split too small to trust), or ``None``.
    """

    calibrator: str = "none"
    prior_source: str = ""
    fitted_on: str | None = None
    not_calibrated: str | None = NOT_YET
    before: dict[str, float] = field(default_factory=dict)
    after: dict[str, float] = field(default_factory=dict)
    held_out: dict[str, float] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)
    note: str | None = None

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> CalibrationRecord:
        return cls(**{k: v for k, v in values.items() if k in cls.__dataclass_fields__})


def ece_and_nll(logits: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    """ECE (15 bins) and mean NLL of ``softmax(logits)``."""
    from lt_imbalance.metrics import calibration_metrics

    metrics = calibration_metrics(logits.shape[1])
    metrics.update(logits.double().softmax(1).float().cpu(), targets.cpu())
    return {k: v.item() for k, v in metrics.compute().items()}


class PostProcessor(nn.Module):
    """Logits -> the evaluated, deployed and probability outputs (module docstring).

    Args:
        num_classes: C.
        log_prior: ``log(n_c / n)`` per class for post-hoc adjustment, or ``None``.
        tau: the post-hoc adjustment's strength; 0 (or no prior) is none.

    Examples:
        >>> outputs = PostProcessor(2, torch.log(torch.tensor([0.75, 0.25])), tau=1.0)
        >>> outputs.evaluated(torch.zeros(1, 2)).argmax(1).item()  # the rare class wins a tie
        1
        >>> outputs.assume_prior(torch.tensor([0.5, 0.5]), "uniform")
        >>> outputs.set_target(TargetPrior("mine", torch.tensor([0.9, 0.1])))
        >>> [round(p, 3) for p in outputs(torch.zeros(1, 2))[0].tolist()]  # 0.25 / 0.75 re-weighted by 0.9 / 0.1
        [0.75, 0.25]
    """

    def __init__(self, num_classes: int, log_prior: torch.Tensor | None = None, tau: float = 0.0):
        super().__init__()
        self.num_classes, self.tau = num_classes, float(tau)
        shift = self.tau * log_prior.float() if (self.tau and log_prior is not None) else torch.zeros(num_classes)
        self.register_buffer("posthoc_shift", shift, persistent=False)  # from the hyper-parameters
        self.register_buffer("temperature", torch.ones(()))
        self.register_buffer("bias", torch.zeros(num_classes))
        self.register_buffer("model_prior", torch.zeros(num_classes))  # all 0: unknown
        self.register_buffer("target_prior", torch.zeros(num_classes))  # all 0: none
        self.record = CalibrationRecord()
        self.target_spec: str | None = None

    # ---- reading ---------------------------------------------------------------------------------
    @property
    def calibrated(self) -> bool:
        return self.record.fitted_on is not None

    @property
    def has_target(self) -> bool:
        return self.target_spec is not None

    def uncalibrated(self, logits: torch.Tensor) -> torch.Tensor:
        """``z - tau log pi``: the logits before calibration."""
        return logits - self.posthoc_shift.to(logits.dtype)

    def evaluated(self, logits: torch.Tensor) -> torch.Tensor:
        """``(z - tau log pi) / T + b``: the calibrated logits, a posterior under p_model."""
        return self.uncalibrated(logits) / self.temperature.to(logits.dtype) + self.bias.to(logits.dtype)

    def deployed(self, logits: torch.Tensor) -> torch.Tensor:
        """The evaluated logits re-weighted to the target prior (as evaluated when none is set)."""
        evaluated = self.evaluated(logits)
        return shift_to_prior(evaluated, self.model_prior, self.target_prior) if self.has_target else evaluated

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        """The deployed probabilities."""
        return self.deployed(logits).float().softmax(1)

    def prior(self) -> torch.Tensor:
        """p_model (float64); refused when unknown (a checkpoint of an earlier version without the record)."""
        if not bool((self.model_prior > 0).all()):
            raise BadValue(
                "this model records no class prior for its outputs, so it cannot be re-weighted to another; checkpoints "
                "written by `lt-imbalance fit` of this version record it: retrain, or use a checkpoint of this version"
            )
        return self.model_prior.double()

    # ---- writing ---------------------------------------------------------------------------------
    def assume_prior(self, prior: torch.Tensor, source: str) -> None:
        """Outputs that assume ``prior``, not calibrated (T = 1, b = 0) until :meth:`fit`."""
        self.model_prior.copy_(torch.as_tensor(prior, dtype=torch.float64) / torch.as_tensor(prior).sum())
        self.set_calibration(1.0, torch.zeros(self.num_classes), CalibrationRecord(prior_source=source))

    def assume_recipe(self, priors: RecipePriors) -> None:
        """:meth:`assume_prior` of a recipe's prior (the exact one, or the nearest exact recipe's)."""
        self.assume_prior(priors.nearest, priors.source)

    def set_calibration(self, temperature: float, bias: torch.Tensor, record: CalibrationRecord) -> None:
        self.temperature.fill_(float(temperature))
        self.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))
        self.record = record

    def not_calibrated(self, why: str) -> None:
        """Outputs left uncalibrated (T = 1, b = 0), ``why`` said."""
        self.set_calibration(
            1.0, torch.zeros(self.num_classes), CalibrationRecord(prior_source=self.record.prior_source, not_calibrated=why)
        )

    def fit(self, logits: torch.Tensor, targets: torch.Tensor, where: str) -> CalibrationRecord:
        """Choose and fit the calibrator on the validation split ``(logits [N, C], targets [N])`` (raw
        network logits), scored under the split's own class mix v: NLL of softmax(z' + log v - log
        p_model) (:mod:`lt_imbalance.calibration`); the record says what was done and why."""
        logits, targets = logits.detach().double(), targets.detach()
        uncalibrated = self.uncalibrated(logits)
        counts = torch.bincount(targets, minlength=self.num_classes).double()
        offset = torch.log((counts / counts.sum()).clamp_min(1e-300)) - torch.log(self.prior().to(logits.device))
        choice = choose_calibrator(uncalibrated, targets, offset)
        record = self.describe_choice(choice, uncalibrated, targets, offset, where, int(counts.min()))
        self.set_calibration(choice.temperature, choice.bias, record)
        return record

    def describe_choice(
        self, choice: CalibrationChoice, logits: torch.Tensor, targets: torch.Tensor, offset: torch.Tensor, where: str, fewest: int
    ) -> CalibrationRecord:
        objective = offset.to(logits.device)
        before = ece_and_nll(logits + objective, targets)
        after = ece_and_nll(logits / choice.temperature + choice.bias.to(logits.device) + objective, targets)
        before["nll"] = calibrated_nll(logits, targets, 1.0, torch.zeros_like(offset), offset)  # exactly the objective
        after["nll"] = calibrated_nll(logits, targets, choice.temperature, choice.bias, offset)
        note = None
        if fewest == 0:
            note = "a class has no validation samples, so the calibration is not checked on it (its bias stays near 0)"
        elif fewest < TRUSTED_PER_CLASS:
            note = (
                f"a small validation split: its smallest class has {fewest} samples (fewer than {TRUSTED_PER_CLASS}), so the "
                "held-out comparison of the calibrators is noisy"
            )
        record = CalibrationRecord(
            calibrator=choice.kind,
            prior_source=self.record.prior_source,
            fitted_on=f"{where}, {len(targets)} samples",
            not_calibrated=None,
            before=before,
            after=after,
            held_out=choice.held_out,
            rejected=choice.rejected,
            note=note,
        )
        if choice.kind == "none":
            why = "no calibrator lowered the NLL on held-out folds of the validation split"
            if choice.rejected and len(choice.held_out) == 1:
                why = f"every calibrator's T ends at a bound of its search ({'; '.join(choice.rejected.values())})"
            return replace(record, fitted_on=None, not_calibrated=why)
        return record

    def set_target(self, target: TargetPrior | None) -> None:
        """Deploy for ``target``'s class mix (``None``: as evaluated, under p_model)."""
        if target is None:
            self.target_prior.zero_()
            self.target_spec = None
            return
        if target.estimate:
            raise BadValue("the outputs take a class mix, not 'estimate': estimate it first (predict does)")
        if len(target.shares) != self.num_classes:
            raise BadValue(f"the target prior has {len(target.shares)} classes; the model has {self.num_classes}")
        self.prior()  # refused without a known p_model
        self.target_prior.copy_(target.shares.float())
        self.target_spec = target.spec

    # ---- the state dict --------------------------------------------------------------------------
    def get_extra_state(self) -> dict[str, Any]:
        return {"record": asdict(self.record), "target": self.target_spec}

    def set_extra_state(self, state: Mapping[str, Any]) -> None:
        self.record = CalibrationRecord.from_dict(state.get("record", {}))
        self.target_spec = state.get("target")

    def describe(self, class_names: list[str] | None = None) -> dict[str, Any]:
        """Everything about the outputs as plain values (``calibration.json``, the export's JSON)."""
        names = class_names or [str(c) for c in range(self.num_classes)]

        def by_class(values: torch.Tensor) -> dict[str, float]:
            return dict(zip(names, [round(float(v), 6) for v in values]))

        def shares(values: torch.Tensor) -> dict[str, float] | None:
            return by_class(values) if bool((values > 0).any()) else None

        return {
            **asdict(self.record),
            "calibrated": self.calibrated,
            "temperature": float(self.temperature),
            "class_biases": by_class(self.bias) if bool(self.bias.abs().sum() > 0) else None,
            "model_prior": shares(self.model_prior),
            "target_prior": shares(self.target_prior) if self.has_target else None,
            "target": self.target_spec,
        }


def upgrade_state_dict(checkpoint: dict[str, Any], prefix: str, num_classes: int) -> None:
    """Add the outputs' state to a checkpoint of an earlier version (which kept the calibration record
    beside the weights, or none), so that it loads strictly."""
    state = checkpoint.get("state_dict")
    if state is None or f"{prefix}temperature" in state:
        return
    legacy = checkpoint.get(LEGACY_CALIBRATION_KEY) or {}
    prior = legacy.get("model_prior")
    state[f"{prefix}temperature"] = torch.tensor(float(legacy.get("temperature", 1.0)))
    state[f"{prefix}bias"] = torch.zeros(num_classes)
    state[f"{prefix}model_prior"] = torch.tensor(prior, dtype=torch.float32) if prior else torch.zeros(num_classes)
    state[f"{prefix}target_prior"] = torch.zeros(num_classes)
    calibrated = legacy.get("fitted_on") is not None
    record = CalibrationRecord(
        calibrator="temperature" if calibrated else "none",
        prior_source=legacy.get("prior_source", ""),
        fitted_on=legacy.get("fitted_on"),
        not_calibrated=None if calibrated else legacy.get("not_calibrated") or "written by an earlier version without calibration",
        before=legacy.get("before", {}),
        after=legacy.get("after", {}),
    )
    state[f"{prefix}_extra_state"] = {"record": asdict(record), "target": None}
