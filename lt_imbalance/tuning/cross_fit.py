"""Cross-fitted judging: a trial's config fitted once per fold, judged on its out-of-fold outputs.

With ``--folds K`` every trial is K fits of its config (``trials/<n>/fold<k>/``): fit k trains on
K - 1 stratified folds of the training images and is calibrated and adjusted as deployed on its own
held-out fold k (the data module's ``val_folds`` / ``val_fold``,
:func:`~lt_imbalance.data.splits.stratified_folds`). Each fold's deployed validation probabilities
are kept with the pool positions of its images; put together they are the out-of-fold outputs,
one row per training image, each from the one fold model that did not train on it
(:func:`out_of_fold`). The trial's value, the winner, the paired standard errors and the ensemble
are computed on them, and the deployed answer is the bag of the K fold models.

By default (:func:`default_folds`) cross-fitting is on when the holdout's smallest class has fewer
than :data:`FEW_PER_CLASS` validation images: a class judged on one to nine images moves balanced
accuracy by 1 / (C n_c) per image, which makes the winner a coin toss, while out-of-fold every
training image of the class is judged. It costs K fits per trial.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lt_imbalance.errors import BadValue

#: cross-fitting is on by default when the holdout's smallest class has fewer validation images than this
FEW_PER_CLASS = 10
#: folds when cross-fitting is on by default: each fold model trains on 80% of the training images, as a 0.2 holdout's
DEFAULT_FOLDS = 5
#: the file of a trial's (or fold's) deployed validation outputs
OUTPUTS = "val_outputs.npz"


def fold_overrides(fold: int, folds: int) -> dict[str, Any]:
    """The config overrides of fold ``fold`` of ``folds``."""
    return {"data.init_args.val_folds": folds, "data.init_args.val_fold": fold}


def fold_folder(folder: Path, fold: int) -> Path:
    """Where fold ``fold`` of the trial (or retrain) in ``folder`` runs."""
    return folder / f"fold{fold}"


def default_folds(val_counts: list[int], has_official_val: bool) -> tuple[int, str]:
    """``(K, why)``: the folds the rule of the module docstring chooses for a holdout with
    ``val_counts`` images per class (0 = judge on the holdout), and why, in words."""
    if has_official_val:
        return 0, "the data has its own validation split"
    smallest = min(val_counts) if val_counts else 0
    if smallest < FEW_PER_CLASS:
        return DEFAULT_FOLDS, f"the validation split's smallest class has {smallest} images (fewer than {FEW_PER_CLASS})"
    return 0, f"every class has at least {smallest} validation images"


def out_of_fold(folder: Path, folds: int) -> dict[str, np.ndarray]:
    """The out-of-fold outputs of the trial in ``folder``: each fold's ``val_outputs.npz``
    (``targets``, ``deployed``, ``as_trained``, ``indices``: pool positions) put together and sorted
    by pool position. Refused when a fold's outputs are missing, a fold's images are not positions in
    the training pool, or two folds held out the same image."""
    parts = []
    for k in range(folds):
        path = fold_folder(folder, k) / OUTPUTS
        if not path.is_file():
            raise BadValue(f"fold {k} of {folder} has no {OUTPUTS}: its fit did not finish calibrated")
        parts.append(dict(np.load(path)))
    merged = {key: np.concatenate([p[key] for p in parts]) for key in ("targets", "deployed", "as_trained", "indices")}
    indices = merged["indices"]
    if (indices < 0).any():
        raise BadValue(f"the folds of {folder} validated on images outside the training pool: no out-of-fold outputs")
    if len(np.unique(indices)) != len(indices):
        raise BadValue(f"the folds of {folder} held out some images more than once: the folds are not disjoint")
    order = np.argsort(indices, kind="stable")
    return {key: value[order] for key, value in merged.items()}


def judge(outputs: dict[str, np.ndarray], metric: str) -> dict[str, float | None]:
    """The trial's record from its out-of-fold ``outputs``: ``value`` (``metric`` of the deployed
    outputs), ``as_trained``, and the binomial ``se`` of balanced accuracy. Shot groups count the
    training images of every fold (each image trains K - 1 of the fold models)."""
    import torch

    from lt_imbalance.callbacks.calibrate_after_fit import FinalValidation
    from lt_imbalance.metrics import balanced_accuracy_se

    targets = torch.as_tensor(outputs["targets"])
    final = FinalValidation(targets, torch.as_tensor(outputs["deployed"]), torch.as_tensor(outputs["as_trained"]))
    counts = torch.bincount(targets, minlength=outputs["deployed"].shape[1]).tolist()
    deployed, as_trained = (final.result(which, counts) for which in ("deployed", "as_trained"))
    if metric not in deployed.metrics:
        raise BadValue(
            f"the monitor val/{metric} cannot be computed from out-of-fold predictions; cross-fitting judges a metric of the "
            f"predicted classes ({', '.join(sorted(deployed.metrics))}), or turn it off with --folds 0"
        )
    se = balanced_accuracy_se(deployed.confusion) if metric == "balanced_acc" else None
    return {"value": deployed.metrics[metric], "as_trained": as_trained.metrics[metric], "se": se}
