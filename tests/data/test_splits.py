import numpy as np
import pytest

from lt_imbalance.data.splits import draw_long_tailed, draw_natural, indices_hash, long_tailed_counts, stratified_holdout


def test_exponential_counts_match_the_cifar10_lt_protocol():
    # n_c = floor(5000 * 100^(-c/9)): the well-known CIFAR-10-LT (rho = 100) counts
    assert long_tailed_counts(10, 5000, 100) == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]


def test_exponential_counts_closed_form_cifar100():
    counts = long_tailed_counts(100, 500, 100)
    assert counts[0] == 500 and counts[-1] == 5 and len(counts) == 100
    assert counts[50] == int(np.floor(500 * 100 ** (-50 / 99)))
    assert all(a >= b for a, b in zip(counts, counts[1:]))


def test_step_profile():
    assert long_tailed_counts(10, 1000, 10, "step") == [1000] * 5 + [100] * 5
    assert long_tailed_counts(5, 100, 4, "step", step_fraction=0.4) == [100, 100, 25, 25, 25]


def test_ratio_one_is_balanced():
    assert long_tailed_counts(4, 7, 1) == [7, 7, 7, 7]


@pytest.mark.parametrize("ratio", [0.5, 0, -3, float("nan"), float("inf")])
def test_imbalance_ratio_below_one_is_refused(ratio):
    with pytest.raises(ValueError, match="imbalance_ratio must be a finite number >= 1"):
        long_tailed_counts(10, 100, ratio)


def test_a_class_left_with_zero_samples_is_refused():
    with pytest.raises(ValueError, match=r"classes \[8, 9\] with zero samples; lower imbalance_ratio"):
        long_tailed_counts(10, 50, 100)


def _pool(per_class=40, classes=5):
    return np.repeat(np.arange(classes), per_class)[np.random.default_rng(1).permutation(per_class * classes)]


def test_split_counts_no_duplicates_and_labels():
    labels = _pool()
    split = draw_long_tailed(labels, 5, imbalance_ratio=10, seed=3)
    assert split.class_counts == long_tailed_counts(5, 40, 10)
    assert len(np.unique(split.indices)) == len(split.indices) == sum(split.class_counts)
    assert np.bincount(labels[split.indices], minlength=5).tolist() == split.class_counts


def test_split_is_deterministic_per_seed_and_differs_across_seeds():
    labels = _pool()
    a, b = draw_long_tailed(labels, 5, 10, seed=0), draw_long_tailed(labels, 5, 10, seed=0)
    c = draw_long_tailed(labels, 5, 10, seed=1)
    assert np.array_equal(a.indices, b.indices) and a.hash == b.hash
    assert a.hash != c.hash and a.class_counts == c.class_counts


def test_hash_is_stable_across_versions():
    # a regression pin: the hash saved with old runs must still identify the same indices
    assert indices_hash(np.arange(10)) == indices_hash(np.arange(10, dtype=np.int32))
    assert indices_hash(np.arange(10)) == "23c379d6c0f22ef6"


def test_class_order_moves_the_head():
    split = draw_long_tailed(_pool(), 5, 10, class_order=[4, 3, 2, 1, 0])
    assert split.class_counts == long_tailed_counts(5, 40, 10)[::-1]


def test_empty_class_and_oversized_n_max_are_refused():
    labels = np.array([0, 0, 1, 1, 3, 3])
    with pytest.raises(ValueError, match=r"classes \[2\] have no samples"):
        draw_long_tailed(labels, 4, 1)
    with pytest.raises(ValueError, match="n_max is larger than what these classes hold"):
        draw_long_tailed(_pool(), 5, 2, n_max=100)
    with pytest.raises(ValueError, match=r"classes \[2\] have no training samples"):
        draw_natural(labels, 4)


def test_holdout_is_stratified_and_keeps_every_class():
    labels = np.repeat(np.arange(3), [50, 10, 1])
    keep, held = stratified_holdout(labels, 3, 0.2, seed=0)
    assert np.bincount(labels[held], minlength=3).tolist() == [10, 2, 0]
    assert np.bincount(labels[keep], minlength=3).tolist() == [40, 8, 1]
    assert set(keep).isdisjoint(held) and len(keep) + len(held) == len(labels)
    with pytest.raises(ValueError, match="val_fraction"):
        stratified_holdout(labels, 3, 1.0)
