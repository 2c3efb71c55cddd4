"""The base of every long-tailed data module: split, validation carve-out, loaders, metadata.

A data module is one :class:`LongTailedDataModule` subclass per data family. Its signature lists
its own options, then the shared ones it passes on by name (no ``**kwargs``: every option of a
shipped data module is in its signature), and it hands its data over through
one typed method, :meth:`LongTailedDataModule.load_data`, which returns a :class:`DatasetParts`:
the class names and the training pool, test set and (when the data ships one) validation set as
:class:`DataPart` s (labels plus the samples: uint8 images, float feature rows or image files).
Downloads belong in ``prepare_data`` (Lightning runs it once per node before ``setup``).

The base then

1. draws the long-tailed training subset of the pool (:mod:`lt_imbalance.data.splits`;
   ``profile: none`` keeps the data's own distribution);
2. holds out a validation split (:meth:`LongTailedDataModule.validation_source` says which):
   with ``val_source: split`` a stratified ``val_fraction`` of the long-tailed training split
   (``val_fraction: 0`` validates on the test set, the usual CIFAR-LT protocol, which does no
   model selection); with ``val_source: pool`` a *balanced* set of ``val_per_class`` pool images
   per class, held out before the long-tailed draw, which then takes its images from the rest
   (n_max = the smallest remaining class), as ImageNet-LT's validation set is drawn from images
   the training set does not use: tail classes are not judged on one or two images, and the
   training split keeps all its images; data with its own validation split uses that;
3. serves the loaders: the training order and every sample's augmentation seed are functions of
   (seed, epoch) (:class:`~lt_imbalance.data.samplers.EpochSampler`), and a run resumed
   mid-epoch skips the batches it already trained on.

``class_counts``, ``num_classes`` and ``input_shape`` are computed on first access, before
``setup`` (the CLI reads them when it links them into the model); the split is a function of the
pool's labels alone, so it is the same on every rank.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, Literal

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import Dataset

from lt_imbalance.data.loaders import EpochLoaders
from lt_imbalance.data.parts import DataPart, DatasetParts, TrainValSplit
from lt_imbalance.data.samplers import SamplerName
from lt_imbalance.data.splits import (
    Draw,
    Profile,
    balanced_holdout,
    check_imbalance_ratio,
    draw_long_tailed,
    draw_natural,
    indices_hash,
    stratified_folds,
    stratified_holdout,
)
from lt_imbalance.errors import BadValue
from lt_imbalance.inputs import InputSpec

#: where the validation set comes from: a share of the training split, or unused pool samples
ValSource = Literal["split", "pool"]


class LongTailedDataModule(EpochLoaders, pl.LightningDataModule):
    """Base data module: long-tailed split, validation carve-out, loaders, metadata.

    Args:
        batch_size: samples per optimisation step over all devices (the global batch); each of
            W devices loads batch_size / W (a warning says when W does not divide it).
        num_workers: DataLoader worker processes.
        imbalance_ratio: rho = n_max / n_min of the training split (>= 1).
        profile: ``exponential``, ``step`` or ``none`` (keep the natural distribution).
        split_seed: seed of the long-tailed draw and the validation carve-out.
        val_fraction: with ``val_source: split``, the stratified share of the long-tailed training
            split held out for validation (every class keeps at least one training sample); 0
            validates on the test set.
        val_source: ``split`` (from the training split, ``val_fraction``) or ``pool`` (a balanced
            set of ``val_per_class`` pool samples per class that the long-tailed draw does not
            use; needs ``val_fraction: 0``).
        val_per_class: samples per class of the ``pool`` validation set.
        val_folds: K >= 2 for cross-fitting (``lt-imbalance tune --folds K``): the images the split
            above trains and validates on (a ``pool`` hold-out stays out) are dealt into K stratified
            folds (:func:`~lt_imbalance.data.splits.stratified_folds`); fold ``val_fold`` validates and
            the other K - 1 train. 0 (default): no cross-fitting.
        val_fold: which of the ``val_folds`` folds validates (0 .. K - 1).
        ssl_views: also return two SSL views of every training sample (Joint-SSL); the CLI sets it
            from ``model.init_args.ssl.weight``.
        sampler: ``random`` (shuffle), or re-sampling with replacement: ``class_balanced`` (every
            class equally likely) or ``square_root`` (:mod:`lt_imbalance.data.samplers`); either
            way the epoch's order is a function of (split_seed, global seed, epoch).
    """

    #: set by subclasses whose data ships its own validation split (``DatasetParts.val``)
    has_official_val = False
    #: what one sample is, in tables and messages
    sample_unit = "images"

    def __init__(
        self,
        batch_size: int = 128,
        num_workers: int = 0,
        imbalance_ratio: float = 100.0,
        profile: Profile = "exponential",
        split_seed: int = 0,
        val_fraction: float = 0.1,
        val_source: ValSource = "split",
        val_per_class: int = 20,
        val_folds: int = 0,
        val_fold: int = 0,
        ssl_views: bool = False,
        sampler: SamplerName = "random",
    ):
        super().__init__()
        if sampler not in ("random", "class_balanced", "square_root"):
            raise BadValue(f"unknown sampler {sampler!r}; choose random, class_balanced or square_root")
        if batch_size < 1:
            raise BadValue(f"batch_size must be >= 1, got {batch_size}")
        if num_workers < 0:
            raise BadValue(f"num_workers must be 0 (load in the training process) or more, got {num_workers}")
        if split_seed < 0:
            raise BadValue(f"split_seed must be 0 or more (a seed of the long-tailed draw), got {split_seed}")
        check_imbalance_ratio(imbalance_ratio)
        if profile == "none" and imbalance_ratio != 1:
            raise BadValue(
                f"profile 'none' keeps the data's own distribution, so imbalance_ratio={imbalance_ratio} "
                "would be ignored; set imbalance_ratio: 1, or choose profile 'exponential' or 'step'."
            )
        if val_source not in ("split", "pool"):
            raise BadValue(f"unknown val_source {val_source!r}; choose split (a share of the training split) or pool (unused pool images)")
        if val_source == "pool" and (val_fraction > 0 or val_per_class < 1):
            raise BadValue(
                f"val_source: pool draws val_per_class (>= 1, got {val_per_class}) unused pool images per class and takes "
                f"nothing from the training split; set val_fraction: 0 (not {val_fraction})."
            )
        if val_folds == 1 or val_folds < 0 or not 0 <= val_fold < max(val_folds, 1):
            raise BadValue(
                f"val_folds={val_folds}, val_fold={val_fold}: cross-fitting needs val_folds >= 2 and 0 <= val_fold < val_folds "
                "(val_folds: 0 turns it off)"
            )
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.imbalance_ratio = imbalance_ratio
        self.profile = profile
        self.split_seed = split_seed
        self.val_fraction = val_fraction
        self.val_source, self.val_per_class = val_source, val_per_class
        self.val_folds, self.val_fold = val_folds, val_fold
        self.ssl_views = ssl_views
        self.sampler = sampler
        self.train_set: Dataset | None = None
        #: the split recomputed on the data's own labels at ``setup`` where they differ from the announced ones
        self.confirmed_split: TrainValSplit | None = None
        self.check_validation_settings()

    def check_validation_settings(self) -> None:
        """Data with its own validation split takes no validation share of the training split (a
        subclass that learns only from its arguments whether it has one calls this again)."""
        if self.has_official_val and (self.val_fraction > 0 or self.val_source != "split" or self.val_folds):
            raise BadValue(
                f"{type(self).__name__} has its own validation split; set val_fraction: 0 (not {self.val_fraction}), val_source: split "
                f"and val_folds: 0 (not {self.val_folds}): cross-fitting is for data judged on a share of its training images."
            )

    # ---- what a subclass provides ---------------------------------------------------------
    def load_data(self) -> DatasetParts:
        """Read the data as distributed (called once, lazily; after ``prepare_data`` under the Trainer)."""
        raise NotImplementedError(f"{type(self).__name__} must implement load_data() -> DatasetParts")

    def pool_labels(self) -> np.ndarray:
        """The training pool's labels, all the split needs; override when they are cheaper to get
        than the whole data (or known before a download)."""
        return self.parts.pool.labels

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one model input without the batch dimension, e.g. ``(3, 32, 32)`` or ``(F,)``."""
        return tuple(self.parts.pool.samples.shape[1:])

    def make_dataset(self, part: DataPart, indices: np.ndarray | None, train: bool) -> Dataset:
        """A dataset of ``part`` (restricted to ``indices``), with the training transforms and SSL
        views when ``train``."""
        raise NotImplementedError(f"{type(self).__name__} must implement make_dataset()")

    # ---- derived, on first access ---------------------------------------------------------
    @cached_property
    def parts(self) -> DatasetParts:
        """The data, as :meth:`load_data` hands it over (checked once)."""
        parts = self.load_data()
        if (parts.val is not None) != self.has_official_val:
            raise BadValue(
                f"{type(self).__name__}.load_data returned val={'a part' if parts.val is not None else None} but has_official_val={self.has_official_val}"
            )
        num_classes = len(parts.class_names)
        for name, part in (("pool", parts.pool), ("test", parts.test), ("val", parts.val)):
            if part is not None and len(part) and (part.labels.min() < 0 or part.labels.max() >= num_classes):
                raise BadValue(f"{type(self).__name__}: {name} labels must lie in [0, {num_classes - 1}] ({num_classes} class names)")
        return parts

    @cached_property
    def announced_labels(self) -> np.ndarray:
        """The pool's labels as known before the data is read (:meth:`pool_labels`), for the class counts
        the CLI links into the model at instantiation."""
        return np.asarray(self.pool_labels(), dtype=np.int64)

    @cached_property
    def announced_split(self) -> TrainValSplit:
        return self.train_val_split(self.announced_labels)

    @property
    def split(self) -> TrainValSplit:
        """The split: the long-tailed training positions and the validation carve-out (module
        docstring); from the announced labels until ``setup`` has confirmed it on the data."""
        return self.confirmed_split if self.confirmed_split is not None else self.announced_split

    def long_tailed_draw(self, pool_labels: np.ndarray, num_classes: int) -> Draw:
        """The long-tailed training draw (positions into ``pool_labels``): the seeded draw of
        :func:`~lt_imbalance.data.splits.draw_long_tailed`; a data family may use its
        literature's procedure instead."""
        return draw_long_tailed(pool_labels, num_classes, self.imbalance_ratio, self.profile, self.split_seed)

    def train_val_split(self, pool_labels: np.ndarray) -> TrainValSplit:
        """The split of a pool with ``pool_labels``: a function of the labels and the settings alone."""
        num_classes = self.num_classes
        if num_classes < 2:
            raise BadValue(
                f"{type(self).__name__}: the training data has {num_classes} class; a classifier needs at least two classes "
                "(check the data's class folders or label column)."
            )
        candidates = np.arange(len(pool_labels))
        if self.val_source == "pool":  # a balanced validation set first; the long-tailed draw takes from the rest
            candidates, val = self._pool_validation(pool_labels, num_classes)
        if self.profile == "none":
            drawn = draw_natural(pool_labels[candidates], num_classes)
        else:
            drawn = self.long_tailed_draw(pool_labels[candidates], num_classes)
        if self.val_source == "pool":
            train = candidates[drawn.indices]
        else:
            keep, held = stratified_holdout(pool_labels[drawn.indices], num_classes, self.val_fraction, self.split_seed + 1)
            train, val = drawn.indices[keep], drawn.indices[held]
        if self.val_folds:
            train, val = self.cross_fit_split(pool_labels, train if self.val_source == "pool" else np.concatenate([train, val]))
        split = TrainValSplit(
            train_indices=train,
            val_indices=val,
            class_counts=np.bincount(pool_labels[train], minlength=num_classes).tolist(),
            val_counts=np.bincount(pool_labels[val], minlength=num_classes).tolist(),
            hash=indices_hash(np.concatenate([train, [-1], val])),
        )
        if self.batch_size > len(train):
            raise BadValue(
                f"batch_size={self.batch_size} is larger than the training split ({len(train)} {self.sample_unit}); "
                "lower data.batch_size or the imbalance ratio."
            )
        return split

    def cross_fit_split(self, pool_labels: np.ndarray, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(train, validation)`` pool positions of fold ``val_fold`` of ``images`` (the constructor's
        ``val_folds``), both in ascending pool order."""
        images = np.sort(images)
        fold_of = stratified_folds(pool_labels[images], self.num_classes, self.val_folds, self.split_seed + 2)
        return images[fold_of != self.val_fold], images[fold_of == self.val_fold]

    def cross_fit_images(self) -> np.ndarray:
        """With ``val_folds``: the pool positions of every fold's images (each fold trains on the others),
        from which what the fold models must share is fitted without labels (the input normalisation,
        a table's encoding), so that their bag is one model. Without: the training split."""
        split = self.split
        return np.sort(np.concatenate([split.train_indices, split.val_indices])) if self.val_folds else split.train_indices

    def _pool_validation(self, pool_labels: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
        """``(rest, validation)``: ``val_per_class`` random pool positions per class, and the positions left."""
        short = [(c, n) for c, n in enumerate(np.bincount(pool_labels, minlength=num_classes)) if n <= self.val_per_class]
        if short:
            raise BadValue(
                f"val_source: pool holds out {self.val_per_class} pool samples per class before the long-tailed draw, but "
                f"(class, samples) {short} have no more than that; lower val_per_class, or use val_source: split with a val_fraction."
            )
        return balanced_holdout(pool_labels, num_classes, self.val_per_class, self.split_seed + 1)

    @property
    def class_counts(self) -> list[int]:
        """Training samples per class (after the long-tailed draw and the validation carve-out)."""
        return self.split.class_counts

    @property
    def val_counts(self) -> list[int]:
        """Validation samples per class: of the data's own validation set where it ships one."""
        if self.has_official_val:
            return np.bincount(self.parts.val.labels, minlength=self.num_classes).tolist()
        return self.split.val_counts

    @property
    def num_classes(self) -> int:
        return len(self.parts.class_names)

    @property
    def class_names(self) -> list[str]:
        return [str(n) for n in self.parts.class_names]

    @property
    def train_indices(self) -> np.ndarray:
        return self.split.train_indices

    @property
    def val_indices(self) -> np.ndarray:
        return self.split.val_indices

    @property
    def split_hash(self) -> str:
        return self.split.hash

    @cached_property
    def test_hash(self) -> str:
        """SHA-256 (16 hex digits) of the test set as loaded (labels and samples: file paths, or the
        samples' bytes): equal across runs exactly when they test on the same images."""
        import hashlib

        test = self.parts.test
        digest = hashlib.sha256(np.ascontiguousarray(test.labels).tobytes())
        samples = test.samples
        if isinstance(samples, torch.Tensor):
            digest.update(samples.contiguous().numpy().tobytes())
        else:
            digest.update("\n".join(str(s) for s in samples).encode())
        return digest.hexdigest()[:16]

    # ---- Lightning hooks ------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        parts = self.parts
        announced = self.announced_split
        if not np.array_equal(parts.pool.labels, self.announced_labels):
            # the counts were announced from labels known before the data was there (e.g. before a
            # download): the split depends on the class sizes alone, so the real labels give the same counts
            confirmed = self.train_val_split(parts.pool.labels)
            if confirmed.class_counts != announced.class_counts:
                raise BadValue(
                    f"{type(self).__name__}: the class counts {announced.class_counts} announced before setup differ from the "
                    f"data's {confirmed.class_counts}; the data changed between construction and setup."
                )
            self.confirmed_split = confirmed
        split = self.split
        self.train_set = self.make_dataset(parts.pool, split.train_indices, train=True)
        self.test_set = self.make_dataset(parts.test, None, train=False)
        if parts.val is not None:
            self.val_set = self.make_dataset(parts.val, None, train=False)
        elif len(split.val_indices):
            self.val_set = self.make_dataset(parts.pool, split.val_indices, train=False)
        else:
            self.val_set = self.test_set
        self.test_counts = np.bincount(parts.test.labels, minlength=self.num_classes).tolist()

    def train_eval_dataset(self, max_per_class: int | None = None, seed: int = 0) -> Dataset:
        """The training split without augmentation or SSL views, for diagnostics: all of it, or a
        fixed random subset of at most ``max_per_class`` samples per class (seeded, so every epoch and
        every rank sees the same samples)."""
        indices = self.split.train_indices
        if max_per_class is not None:
            rng = np.random.default_rng(seed)
            labels = self.parts.pool.labels[indices]
            chosen = [rng.permutation(np.flatnonzero(labels == c))[:max_per_class] for c in range(self.num_classes)]
            indices = indices[np.sort(np.concatenate(chosen))]
        return self.make_dataset(self.parts.pool, indices, train=False)

    # ---- reproducibility ------------------------------------------------------------------
    def validation_source(self) -> str:
        """Which samples validation uses, in words (saved in the run metadata)."""
        if self.has_official_val:
            return "the dataset's own validation split"
        if self.val_folds:
            return f"cross-fitting fold {self.val_fold} of {self.val_folds} (stratified; the other folds train)"
        if self.val_source == "pool":
            return f"balanced pool hold-out ({self.val_per_class} pool samples per class, unused by the training split)"
        return "held-out training split" if len(self.split.val_indices) else "test set"

    @property
    def validates_on_test(self) -> bool:
        """True when the validation set is the test set (model selection would then see the test set)."""
        return self.validation_source() == "test set"

    def input_spec(self) -> InputSpec:
        """What prediction needs to know about the inputs (saved in checkpoints by the module, so that
        ``lt-imbalance predict`` needs no data config): the class names and counts, the input shape
        and how to turn a raw sample into a model input. Subclasses add their part with
        ``dataclasses.replace``."""
        return InputSpec("table", self.input_shape, self.class_names, self.class_counts, self.sample_unit)

    @property
    def metadata(self) -> dict[str, Any]:
        """What a run must record to be reproduced: split parameters, counts and the split hash."""
        info = {
            "dataset": type(self).__name__,
            "class_names": self.class_names,
            "class_counts": self.class_counts,
            "val_counts": self.val_counts,
            "split_hash": self.split_hash,
            "split_seed": self.split_seed,
            "imbalance_ratio": self.imbalance_ratio,
            "profile": self.profile,
            "val_fraction": self.val_fraction,
            "val_source": self.val_source,
            "val_per_class": self.val_per_class if self.val_source == "pool" else None,
            "val_folds": self.val_folds,
            "val_fold": self.val_fold,
            "validation_on": self.validation_source(),
            "batch_size": self.batch_size,
            "ssl_views": self.ssl_views,
            "sampler": self.sampler,
            "input_shape": list(self.input_shape),
        }
        if hasattr(self, "test_counts"):
            info["test_counts"] = self.test_counts
            info["test_hash"] = self.test_hash
        return info
