"""EnsembleClassifier: trained classifiers averaged into one model that ``test``, ``predict`` and
``export`` take like any checkpoint.

    p(y | x) = sum_k w_k softmax(a_k(f_k(x)))      every member calibrated and re-weighted to q
    logits   = log p(y | x)                        a posterior under q (:class:`~lt_imbalance.models.ensemble.WeightedEnsemble`)

Its outputs owner (:class:`~lt_imbalance.post_processor.PostProcessor`) assumes q and deploys for q,
so by default it gives ``p``; with another target prior r (``--prior``) it re-weights the averaged
posterior from q to r, ``p(y | x) r(y) / q(y)`` normalised, the same formula as for one model. It is
not recalibrated: each member was calibrated on the validation split when its ``fit`` ended.

The ensemble is an :class:`~lt_imbalance.module.ImbalancedClassifier` whose network is the members'
average (``configure_models``), so the steps, metrics, run files and checkpoint loading are the
ones of a single model. Its hyper-parameters hold each member's, and its state dict each member's
weights and outputs: :func:`save_ensemble` writes one file (``*.ckpt``) that
``EnsembleClassifier.load_from_checkpoint`` reads back; :func:`is_ensemble` tells it from a training
checkpoint. :func:`lt_imbalance.inference.ensemble_builder.build_ensemble` builds one from the members' checkpoints.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import lightning
import torch

from lt_imbalance.errors import BadValue
from lt_imbalance.label_shift import TargetPrior
from lt_imbalance.models.ensemble import WeightedEnsemble
from lt_imbalance.module import INPUTS_KEY, ImbalancedClassifier
from lt_imbalance.output_files import make_folder, write_with

#: checkpoint key that marks an ensemble file and lists where its members came from
ENSEMBLE_KEY = "lt_imbalance_ensemble"
#: the hyper-parameters a member is rebuilt from (the classifier's own arguments), with their defaults
MEMBER_ARGUMENTS = {k: p.default for k, p in inspect.signature(ImbalancedClassifier.__init__).parameters.items() if k != "self"}


def plain_hyperparameters(hparams: dict[str, Any]) -> dict[str, Any]:
    """A member's hyper-parameters as plain values (its settings dataclasses as dicts), as a config holds them."""
    return {k: asdict(v) if is_dataclass(v) else v for k, v in hparams.items() if k in MEMBER_ARGUMENTS}


def member_arguments(values: dict[str, Any]) -> dict[str, Any]:
    """:func:`plain_hyperparameters` back to the classifier's arguments (dicts to their settings dataclasses)."""
    arguments = {}
    for name, value in values.items():
        if name not in MEMBER_ARGUMENTS:
            continue
        default = MEMBER_ARGUMENTS[name]
        arguments[name] = type(default)(**value) if is_dataclass(default) and isinstance(value, dict) else value
    return arguments


class EnsembleClassifier(ImbalancedClassifier):
    """A weighted average of trained classifiers (module docstring); built by
    :func:`~lt_imbalance.inference.ensemble_builder.build_ensemble`.

    Args:
        members: each member's hyper-parameters (those of its checkpoint), in order.
        weights: ``w_k``, one per member (normalised to sum 1).
        member_prior: q, the class shares every member's outputs are re-weighted to.
        member_prior_name: how q was given (``uniform``, ``train``, a file).
        class_counts: training samples per class (the members', or of the whole for a bag of fold models).
        input_shape: one input without the batch dimension (the same for all members).
    """

    def __init__(
        self,
        members: list[dict[str, Any]],
        weights: list[float],
        member_prior: list[float],
        member_prior_name: str = "uniform",
        class_counts: Sequence[int] | None = None,
        input_shape: Sequence[int] = (3, 32, 32),
    ):
        if not members or len(members) != len(weights):
            raise BadValue(f"an ensemble needs one weight per member: {len(members)} members, {len(weights)} weights")
        super().__init__(class_counts=class_counts, num_classes=len(member_prior), input_shape=input_shape)
        for name in set(self.hparams) - set(inspect.signature(EnsembleClassifier.__init__).parameters):
            del self.hparams[name]  # the single model's defaults, collected by save_hyperparameters, are not the ensemble's

    def configure_models(self) -> None:
        """``self.net``: the members' networks and output adjustments, averaged (rebuilt from their hyper-parameters)."""
        networks, adjustments = [], []
        for values in self.hparams["members"]:
            member = ImbalancedClassifier(**{**member_arguments(values), "compile": False})
            networks.append(member.net)
            adjustments.append(member.outputs)
        self.net = WeightedEnsemble(networks, adjustments, self.hparams["weights"])
        self.ssl_objective = None

    def configure_losses(self) -> None:
        """As a single model's; the outputs assume and deploy for q, not recalibrated."""
        super().configure_losses()
        q = torch.tensor(self.hparams["member_prior"], dtype=torch.float64)
        name = self.hparams["member_prior_name"]
        self.outputs.assume_prior(q, f"the ensemble's members, each re-weighted to the prior '{name}'")
        self.outputs.not_calibrated("an ensemble: each member was calibrated on the validation split; their average is not recalibrated")
        self.outputs.set_target(TargetPrior(name, q))

    @property
    def input_statistics(self) -> tuple[Sequence[float], Sequence[float]] | None:
        """The members' (they share their inputs): the first member's backbone's pretrained statistics, or None."""
        return getattr(self.net.networks[0].backbone, "pretrained_statistics", None)

    def configure_optimizers(self) -> dict[str, Any]:
        raise BadValue(
            "an ensemble is not trained: its members are; fit each member's config, then build the ensemble from their checkpoints"
        )


def is_ensemble(checkpoint: dict[str, Any]) -> bool:
    """Whether a checkpoint's contents are an ensemble file's."""
    return ENSEMBLE_KEY in checkpoint


def save_ensemble(ensemble: EnsembleClassifier, path: str | Path, sources: Sequence[str | Path] = ()) -> Path:
    """Write ``ensemble`` as one checkpoint file (atomically: a partial file never has the name);
    ``sources`` (where the members' checkpoints were) are recorded in it."""
    path = Path(path)
    make_folder(path.parent)
    contents = {
        "state_dict": ensemble.state_dict(),
        # with its class path, as LightningCLI writes it: `test --config CFG --ckpt_path` builds the ensemble from it
        "hyper_parameters": {**ensemble.hparams, "_class_path": f"{EnsembleClassifier.__module__}.{EnsembleClassifier.__qualname__}"},
        "pytorch-lightning_version": lightning.__version__,
        INPUTS_KEY: ensemble.input_spec,
        ENSEMBLE_KEY: {"members": [str(p) for p in sources], "weights": ensemble.net.weights.tolist()},
    }
    return write_with(path, lambda partial: torch.save(contents, partial), "the ensemble file")
