"""An ensemble built from its members' training checkpoints (:mod:`lt_imbalance.ensemble_classifier`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from lt_imbalance.ensemble_classifier import EnsembleClassifier, plain_hyperparameters
from lt_imbalance.errors import BadValue
from lt_imbalance.inference.trained_model import load_trained
from lt_imbalance.label_shift import parse_prior


def build_ensemble(
    members: Sequence[tuple[str | Path, float]], prior: str, class_counts: Sequence[int] | None = None
) -> EnsembleClassifier:
    """The ensemble of ``members`` (``(checkpoint, weight)``), every member re-weighted to ``prior``
    (train, uniform, or a file of class shares). The members must share their inputs and classes;
    members trained on different images of the same data (the fold models of a bag, whose class
    counts differ) need ``class_counts``: the training images of the whole, for ``--prior train``."""
    if not members:
        raise BadValue("an ensemble needs at least one member checkpoint")
    loaded = [load_trained(path) for path, _ in members]
    spec = loaded[0][1]
    if class_counts is not None:
        spec = replace(spec, class_counts=tuple(int(n) for n in class_counts))
    for (path, _), (model, other) in zip(members, loaded):
        if isinstance(model, EnsembleClassifier):
            raise BadValue(f"'{path}' is an ensemble already; give the members' own training checkpoints")
        if (other if class_counts is None else replace(other, class_counts=spec.class_counts)) != spec:
            raise BadValue(
                f"'{path}' was trained on other inputs or classes than '{members[0][0]}' (class names, class counts, input shape "
                "or normalisation differ); an ensemble's members must be trained on the same data"
            )
    target = parse_prior(prior, list(spec.class_names), list(spec.class_counts), "ensemble")
    for model, _ in loaded:
        model.outputs.set_target(target)
    ensemble = EnsembleClassifier(
        members=[plain_hyperparameters(dict(model.hparams)) for model, _ in loaded],
        weights=[float(w) for _, w in members],
        member_prior=target.shares.tolist(),
        member_prior_name=target.spec,
        class_counts=list(spec.class_counts),
        input_shape=list(spec.input_shape),
    )
    for k, (model, _) in enumerate(loaded):
        ensemble.net.networks[k].load_state_dict(model.net.state_dict())
        ensemble.net.adjustments[k].load_state_dict(model.outputs.state_dict())
    ensemble.input_spec = spec
    return ensemble.eval()
