"""Cross-fitting folds: a stratified K-fold partition of the training images (disjoint, covering,
every class in every training part), and the data module's ``val_folds`` / ``val_fold``."""

import numpy as np
import pytest

from lt_imbalance.data import DigitsLT, TabularLT
from lt_imbalance.data.splits import stratified_folds
from lt_imbalance.errors import BadValue


def test_folds_partition_each_class_as_evenly_as_possible():
    labels = np.repeat(np.arange(4), [23, 9, 3, 2])
    fold_of = stratified_folds(labels, 4, 5, seed=3)
    assert fold_of.shape == labels.shape and set(fold_of.tolist()) == set(range(5))
    for c, n in enumerate([23, 9, 3, 2]):
        per_fold = np.bincount(fold_of[labels == c], minlength=5)
        assert per_fold.max() - per_fold.min() <= 1 and per_fold.sum() == n  # 23 -> 4 or 5 in every fold
        assert (per_fold > 0).sum() == min(n, 5)  # a class with n < K images: one image in each of n folds
        assert all(per_fold[k] < n for k in range(5))  # every fold's training part keeps an image of every class
    sizes = np.bincount(fold_of, minlength=5)
    assert sizes.max() - sizes.min() <= 1  # classes start where the previous stopped: folds of equal size
    np.testing.assert_array_equal(fold_of, stratified_folds(labels, 4, 5, seed=3))  # seeded
    assert not np.array_equal(fold_of, stratified_folds(labels, 4, 5, seed=4))


def test_a_class_with_one_image_or_fewer_than_two_folds_is_refused():
    with pytest.raises(BadValue, match=r"classes \[1\] have one training image"):
        stratified_folds([0, 0, 0, 1], 2, 3)
    with pytest.raises(BadValue, match="at least 2 folds"):
        stratified_folds([0, 0, 1, 1], 2, 1)


def test_the_folds_of_the_data_module_cover_its_split_and_never_train_on_their_held_out_images():
    base = DigitsLT(imbalance_ratio=10, val_fraction=0.2)
    images = np.sort(np.concatenate([base.train_indices, base.val_indices]))  # what the holdout split trains and validates on
    held = []
    for k in range(3):
        fold = DigitsLT(imbalance_ratio=10, val_fraction=0.2, val_folds=3, val_fold=k)
        assert not set(fold.train_indices) & set(fold.val_indices)  # no fold model trains on its own held-out images
        np.testing.assert_array_equal(np.sort(np.concatenate([fold.train_indices, fold.val_indices])), images)
        assert min(fold.val_counts) >= 1 and sum(fold.class_counts) + sum(fold.val_counts) == len(images)
        assert fold.validation_source() == f"cross-fitting fold {k} of 3 (stratified; the other folds train)"
        assert fold.metadata["val_folds"] == 3 and fold.metadata["val_fold"] == k
        held.append(fold.val_indices)
    all_held = np.concatenate(held)
    assert len(np.unique(all_held)) == len(all_held)  # disjoint
    np.testing.assert_array_equal(np.sort(all_held), images)  # every training image is held out once


def test_a_pool_holdout_stays_out_of_the_folds():
    pool = DigitsLT(imbalance_ratio=10, val_source="pool", val_per_class=10, val_fraction=0)
    fold = DigitsLT(imbalance_ratio=10, val_source="pool", val_per_class=10, val_fraction=0, val_folds=2, val_fold=1)
    assert not set(fold.val_indices) & set(pool.val_indices)
    np.testing.assert_array_equal(np.sort(np.concatenate([fold.train_indices, fold.val_indices])), np.sort(pool.train_indices))


@pytest.mark.parametrize(("folds", "fold"), [(1, 0), (-2, 0), (3, 3), (3, -1), (0, 1)])
def test_fold_settings_that_mean_nothing_are_refused(folds, fold):
    with pytest.raises(BadValue, match="cross-fitting needs val_folds >= 2 and 0 <= val_fold < val_folds"):
        DigitsLT(val_folds=folds, val_fold=fold)


def test_a_table_encoding_is_shared_by_the_folds(tmp_path):
    """The fold models of a bag share one input encoding: fitted on the rows of every fold (features only)."""
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"x": rng.normal(size=300), "y": rng.normal(size=300), "label": rng.choice(["a", "b", "c"], 300, p=[0.6, 0.3, 0.1])}
    )
    frame.to_csv(tmp_path / "t.csv", index=False)
    specs = [
        TabularLT(path=str(tmp_path / "t.csv"), target="label", imbalance_ratio=1, profile="none", val_folds=3, val_fold=k).input_spec()
        for k in range(3)
    ]
    assert specs[0].preprocessing == specs[1].preprocessing == specs[2].preprocessing
    holdout = TabularLT(path=str(tmp_path / "t.csv"), target="label", imbalance_ratio=1, profile="none").input_spec()
    assert holdout.preprocessing != specs[0].preprocessing  # the holdout split's encoding sees its training rows only


def test_the_image_normalisation_is_shared_by_the_folds():
    folds = [DigitsLT(imbalance_ratio=10, val_fraction=0.2, val_folds=3, val_fold=k) for k in range(3)]
    for data in folds:
        data.setup("fit")
    assert folds[0].input_spec().mean == folds[1].input_spec().mean == folds[2].input_spec().mean
    assert folds[0].input_spec().std == folds[2].input_spec().std
    holdout = DigitsLT(imbalance_ratio=10, val_fraction=0.2)
    holdout.setup("fit")
    assert holdout.input_spec().mean != folds[0].input_spec().mean  # the holdout's training images only
