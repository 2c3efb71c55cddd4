"""Long-tailed splits as pure, seeded functions (no Lightning, no I/O).

Notation (Cao et al. 2019, as used by Shwartz-Ziv et al. 2023, section 4):
C classes, n_max images for the largest class, imbalance ratio rho = n_max / n_min >= 1.

- exponential profile: n_c = floor(n_max * rho^(-c / (C - 1))), c = 0..C-1;
- step profile: the first floor(mu * C) classes keep n_max, the rest get floor(n_max / rho).

Images are drawn without replacement, deterministically from (labels, profile, rho, seed):
:func:`draw_long_tailed` with NumPy's ``default_rng(seed)`` (a different draw per seed, for seed
sweeps), or :func:`draw_cao2019`, the literature's CIFAR-LT draw (the same images as the
LDAM-DRW / MiSLAS code for seed 0).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from lt_imbalance.errors import BadValue

Profile = Literal["exponential", "step", "none"]


@dataclass(frozen=True)
class Draw:
    """Indices chosen from a labelled pool, the per-class counts and a hash of the indices."""

    indices: np.ndarray
    class_counts: list[int]
    hash: str


def indices_hash(indices: np.ndarray) -> str:
    """SHA-256 (first 16 hex digits) of the int64 indices in their stored order."""
    return hashlib.sha256(np.ascontiguousarray(indices, dtype=np.int64).tobytes()).hexdigest()[:16]


def check_imbalance_ratio(imbalance_ratio: float) -> None:
    if not (isinstance(imbalance_ratio, (int, float)) and math.isfinite(imbalance_ratio)) or imbalance_ratio < 1:
        raise BadValue(
            f"imbalance_ratio must be a finite number >= 1 (n_max / n_min), got {imbalance_ratio!r}. "
            "Use 1 for a balanced split and e.g. 100 for the standard CIFAR-LT benchmark."
        )


def long_tailed_counts(
    num_classes: int,
    n_max: int,
    imbalance_ratio: float,
    profile: Profile = "exponential",
    step_fraction: float = 0.5,
) -> list[int]:
    """Per-class target counts of a long-tailed profile (formulas in the module docstring).

    ``profile="none"`` gives n_max for every class. Raises if a class would get zero images.
    """
    check_imbalance_ratio(imbalance_ratio)
    if num_classes < 1:
        raise BadValue(f"num_classes must be >= 1, got {num_classes}")
    if n_max < 1:
        raise BadValue(f"n_max must be >= 1, got {n_max}")
    if profile == "exponential":
        if num_classes == 1:
            counts = [n_max]
        else:
            counts = [int(math.floor(n_max * imbalance_ratio ** (-c / (num_classes - 1)) + 1e-9)) for c in range(num_classes)]
    elif profile == "step":
        if not 0 <= step_fraction <= 1:
            raise BadValue(f"step_fraction (mu) must lie in [0, 1], got {step_fraction}")
        n_head = int(math.floor(step_fraction * num_classes))
        counts = [n_max] * n_head + [int(math.floor(n_max / imbalance_ratio + 1e-9))] * (num_classes - n_head)
    elif profile == "none":
        counts = [n_max] * num_classes
    else:
        raise BadValue(f"unknown profile {profile!r}; choose one of 'exponential', 'step', 'none'")
    empty = [c for c, n in enumerate(counts) if n == 0]
    if empty:
        raise BadValue(
            f"the {profile} profile with n_max={n_max} and imbalance_ratio={imbalance_ratio} leaves "
            f"classes {empty} with zero samples; lower imbalance_ratio to at most {n_max} or use more data."
        )
    return counts


def _per_class_pools(labels: np.ndarray, num_classes: int) -> list[np.ndarray]:
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise BadValue(f"labels must be one-dimensional, got shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise BadValue(f"labels must lie in [0, {num_classes - 1}], found [{labels.min()}, {labels.max()}]")
    return [np.flatnonzero(labels == c) for c in range(num_classes)]


def draw_long_tailed(
    labels: Sequence[int] | np.ndarray,
    num_classes: int,
    imbalance_ratio: float,
    profile: Profile = "exponential",
    seed: int = 0,
    n_max: int | None = None,
    step_fraction: float = 0.5,
    class_order: Sequence[int] | None = None,
) -> Draw:
    """Draw a long-tailed subset of a labelled pool without replacement.

    Class ``class_order[k]`` gets the k-th count of :func:`long_tailed_counts` (default order:
    0..C-1, so class 0 is the head). ``n_max`` defaults to the smallest class pool, so every
    class can supply its count. Returned indices are sorted by class, then by the random draw.
    """
    pools = _per_class_pools(np.asarray(labels), num_classes)
    sizes = [len(p) for p in pools]
    empty = [c for c, s in enumerate(sizes) if s == 0]
    if empty:
        raise BadValue(f"classes {empty} have no samples in the data; every class needs at least one image.")
    if n_max is None:
        n_max = min(sizes)
    order = list(range(num_classes)) if class_order is None else list(class_order)
    if sorted(order) != list(range(num_classes)):
        raise BadValue(f"class_order must be a permutation of 0..{num_classes - 1}, got {order}")
    targets = long_tailed_counts(num_classes, n_max, imbalance_ratio, profile, step_fraction)
    counts = [0] * num_classes
    for rank, c in enumerate(order):
        counts[c] = targets[rank]
    short = [(c, counts[c], sizes[c]) for c in range(num_classes) if counts[c] > sizes[c]]
    if short:
        raise BadValue(
            "n_max is larger than what these classes hold (class, wanted, available): "
            f"{short}; lower n_max or leave it unset to use the smallest class size."
        )
    rng = np.random.default_rng(seed)
    chosen = [rng.permutation(pool)[:n] for pool, n in zip(pools, counts)]
    indices = np.concatenate(chosen).astype(np.int64)
    return Draw(indices=indices, class_counts=counts, hash=indices_hash(indices))


def draw_cao2019(labels: Sequence[int] | np.ndarray, class_counts: Sequence[int], seed: int = 0) -> Draw:
    """The long-tailed draw of Cao et al. 2019's CIFAR-LT code (LDAM-DRW; reused by MiSLAS and by
    Shwartz-Ziv et al.'s code), so that the selected images are the literature's.

    Their procedure: seed NumPy's legacy generator once (``np.random.seed(seed)``; their default
    0), then for each class c = 0, 1, ... in order, shuffle the positions of that class in the
    pool (``np.random.shuffle``) and keep the first n_c. Reproduced with a private
    ``np.random.RandomState(seed)``, the same stream without touching the global one. The
    indices come class by class, each in its shuffled order (their order of the images).
    """
    labels = np.asarray(labels)
    pools = _per_class_pools(labels, len(class_counts))
    short = [(c, n, len(p)) for c, (n, p) in enumerate(zip(class_counts, pools)) if n > len(p)]
    if short:
        raise BadValue(f"the pool holds fewer images than the counts ask (class, wanted, available): {short}")
    rng = np.random.RandomState(seed)
    chosen = []
    for pool, n in zip(pools, class_counts):
        pool = pool.copy()
        rng.shuffle(pool)
        chosen.append(pool[:n])
    indices = np.concatenate(chosen).astype(np.int64)
    return Draw(indices=indices, class_counts=list(class_counts), hash=indices_hash(indices))


def draw_natural(labels: Sequence[int] | np.ndarray, num_classes: int) -> Draw:
    """Keep every sample (the data's own distribution); raises on a class with no samples."""
    pools = _per_class_pools(np.asarray(labels), num_classes)
    empty = [c for c, p in enumerate(pools) if len(p) == 0]
    if empty:
        raise BadValue(f"classes {empty} have no training samples; remove them or add data.")
    indices = np.concatenate(pools).astype(np.int64)
    return Draw(indices=indices, class_counts=[len(p) for p in pools], hash=indices_hash(indices))


def stratified_holdout(
    labels: Sequence[int] | np.ndarray, num_classes: int, fraction: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified hold-out: floor(fraction * n_c) positions of each class go to the held-out part.

    Returns ``(keep, held_out)`` as positions into ``labels``. Every class keeps at least one
    sample, so a tail class is never emptied by carving a validation set.
    """
    if not 0 <= fraction < 1:
        raise BadValue(f"val_fraction must lie in [0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    keep, held = [], []
    for pool in _per_class_pools(np.asarray(labels), num_classes):
        pool = rng.permutation(pool)
        n_held = min(int(math.floor(fraction * len(pool))), max(len(pool) - 1, 0))
        held.append(pool[:n_held])
        keep.append(pool[n_held:])
    return np.sort(np.concatenate(keep)).astype(np.int64), np.sort(np.concatenate(held)).astype(np.int64)


def balanced_holdout(labels: Sequence[int] | np.ndarray, num_classes: int, per_class: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Hold out exactly ``per_class`` random samples of every class (a balanced test set).

    Returns ``(pool, held_out)`` as sorted positions into ``labels``; every class must keep at
    least one sample in the pool.
    """
    pools = _per_class_pools(np.asarray(labels), num_classes)
    short = [(c, len(p)) for c, p in enumerate(pools) if len(p) <= per_class]
    if per_class < 1 or short:
        raise BadValue(
            f"a balanced hold-out of {per_class} per class needs more than {per_class} samples in every class; "
            f"(class, samples) short: {short}. Lower test_per_class."
        )
    rng = np.random.default_rng(seed)
    held = np.concatenate([rng.permutation(p)[:per_class] for p in pools])
    keep = np.setdiff1d(np.arange(len(labels)), held)
    return keep.astype(np.int64), np.sort(held).astype(np.int64)


def stratified_folds(labels: Sequence[int] | np.ndarray, num_classes: int, folds: int, seed: int = 0) -> np.ndarray:
    """The fold (0..folds-1) of every position of ``labels``: a stratified K-fold partition for
    cross-fitting.

    Each class's positions are shuffled and dealt to the folds in turn, starting where the previous
    class stopped, so the folds' sizes differ by at most one. A class with n_c >= K images has
    floor(n_c / K) or ceil(n_c / K) of them in every fold; a class with 2 <= n_c < K has one image in
    each of n_c folds (those folds' held-out parts hold it, the others do not), and every fold's
    training part keeps at least one of its images. A class with one image cannot be both held out
    and trained on: refused.

    Examples:
        >>> stratified_folds([0, 0, 0, 1, 1, 1], 2, 3, seed=0).tolist()
        [1, 2, 0, 2, 1, 0]
    """
    labels = np.asarray(labels)
    if folds < 2:
        raise BadValue(f"cross-fitting needs at least 2 folds, got {folds}")
    pools = _per_class_pools(labels, num_classes)
    single = [c for c, p in enumerate(pools) if len(p) == 1]
    if single:
        raise BadValue(
            f"classes {single} have one training image: in {folds}-fold cross-fitting it cannot be both held out and trained on; "
            "use a validation split instead (val_folds: 0), or add images of these classes"
        )
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(labels), dtype=np.int64)
    start = 0
    for pool in pools:
        order = rng.permutation(pool)
        fold_of[order] = (start + np.arange(len(order))) % folds
        start = (start + len(order)) % folds
    return fold_of
