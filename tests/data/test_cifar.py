"""CIFAR-10-LT / CIFAR-100-LT on fake pickle folders in the real format."""

import numpy as np
import pytest
import torch

from lt_imbalance.data import CIFAR10LT, CIFAR100LT, long_tailed_counts
from lt_imbalance.data.splits import draw_cao2019


def test_cifar10_lt_counts_known_before_setup_and_balanced_test(cifar10_dir):
    dm = CIFAR10LT(data_dir=str(cifar10_dir), batch_size=16, imbalance_ratio=100)
    assert dm.num_classes == 10 and dm.input_shape == (3, 32, 32)
    assert dm.class_counts == long_tailed_counts(10, 300, 100)  # known before setup()
    assert dm.class_names[0] == "airplane"
    dm.setup("fit")
    assert dm.test_counts == [10] * 10
    assert dm.val_set is dm.test_set  # val_fraction 0: the CIFAR-LT protocol validates on the test set
    x, y = next(iter(dm.train_dataloader()))
    assert x.dtype == torch.uint8 and x.shape == (16, 3, 32, 32)
    xf, yf = dm.on_after_batch_transfer((x, y), 0)
    assert xf.dtype == torch.float32
    expected = (x.float() / 255 - torch.tensor(dm.mean).view(1, 3, 1, 1)) / torch.tensor(dm.std).view(1, 3, 1, 1)
    assert torch.allclose(xf, expected)


def test_normalisation_is_computed_from_the_training_split_unless_given(cifar10_dir):
    dm = CIFAR10LT(data_dir=str(cifar10_dir), batch_size=16)
    dm.setup("fit")
    train = dm.train_set.images.float() / 255  # fewer than 10,000 images: all of them
    assert dm.mean == pytest.approx(train.mean(dim=(0, 2, 3)).tolist(), abs=1e-5)
    assert dm.std == pytest.approx(train.std(dim=(0, 2, 3)).tolist(), abs=1e-5)
    given = CIFAR10LT(data_dir=str(cifar10_dir), batch_size=16, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    given.setup("fit")
    assert given.mean == (0.5, 0.5, 0.5) and given.metadata["std"] == (0.25, 0.25, 0.25)


def test_cifar_reader_accepts_the_pickle_folder_itself(cifar10_dir):
    dm = CIFAR10LT(data_dir=str(cifar10_dir / "cifar-10-batches-py"), imbalance_ratio=10, batch_size=8)
    assert sum(dm.class_counts) == sum(long_tailed_counts(10, 300, 10))


def test_cifar100_lt(cifar100_dir):
    dm = CIFAR100LT(data_dir=str(cifar100_dir), batch_size=8, val_fraction=0.1)
    assert dm.num_classes == 100 and dm.class_names[3] == "class_03"
    expected = long_tailed_counts(100, 100, 100)
    assert sum(dm.class_counts) + sum(dm.val_counts) == sum(expected)
    assert min(dm.class_counts) >= 1
    dm.setup("fit")
    assert len(dm.val_set) == sum(dm.val_counts) and dm.test_counts == [2] * 100


def test_split_hash_depends_on_seed_only(cifar10_dir):
    a = CIFAR10LT(data_dir=str(cifar10_dir), split_seed=0)
    b = CIFAR10LT(data_dir=str(cifar10_dir), split_seed=0)
    c = CIFAR10LT(data_dir=str(cifar10_dir), split_seed=1)
    assert a.split_hash == b.split_hash != c.split_hash
    assert a.metadata["split_hash"] == a.split_hash and a.metadata["class_counts"] == a.class_counts


def test_missing_cifar_folder_says_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no dataset at .*cifar-10-batches-py.*download: true"):
        CIFAR10LT(data_dir=str(tmp_path / "nowhere"))


def test_download_happens_in_prepare_data_and_counts_are_known_before(tmp_path, cifar10_dir, monkeypatch):
    """With download: true and no files yet, construction does no I/O and the counts come from the
    published class sizes; prepare_data downloads (here: a copy of the fake folder stands in for the
    internet); setup then uses the real labels and checks the counts."""
    import shutil

    import torchvision.datasets

    target = tmp_path / "data"
    calls = []

    def fake_download(root, train, download):
        calls.append(root)
        shutil.copytree(cifar10_dir / "cifar-10-batches-py", target / "cifar-10-batches-py")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", fake_download)
    dm = CIFAR10LT(data_dir=str(target), download=True, imbalance_ratio=10, batch_size=8)
    assert dm.class_counts == long_tailed_counts(10, 5000, 10)  # the real CIFAR-10 has 5,000 images per class
    assert not calls and not target.exists()
    dm.prepare_data()
    assert calls == [str(target)]
    with pytest.raises(ValueError, match="announced before setup differ from the data's"):
        dm.setup("fit")  # the stand-in has 300 per class, not CIFAR-10's 5,000: refused, not silently re-split
    fresh = CIFAR10LT(data_dir=str(target), download=True, imbalance_ratio=10, batch_size=8)
    fresh.prepare_data()  # files exist now: no second download
    assert len(calls) == 1 and fresh.class_counts == long_tailed_counts(10, 300, 10)
    fresh.setup("fit")
    assert np.bincount(fresh.train_set.labels.numpy()).tolist() == fresh.class_counts


def test_bad_ratio_batch_size_and_policy(cifar10_dir):
    with pytest.raises(ValueError, match="imbalance_ratio must be a finite number >= 1"):
        CIFAR10LT(data_dir=str(cifar10_dir), imbalance_ratio=0.5)
    with pytest.raises(ValueError, match="batch_size=4096 is larger than the training split"):
        CIFAR10LT(data_dir=str(cifar10_dir), batch_size=4096).class_counts
    with pytest.raises(ValueError, match="unknown augmentation policy 'autoaug'; choose one of none, standard"):
        CIFAR10LT(data_dir=str(cifar10_dir), augmentation="autoaug")
    with pytest.raises(ValueError, match="zero samples"):
        CIFAR10LT(data_dir=str(cifar10_dir), imbalance_ratio=400).class_counts
    with pytest.raises(ValueError, match="profile 'none' keeps the data's own distribution"):
        CIFAR10LT(data_dir=str(cifar10_dir), profile="none", imbalance_ratio=100)
    with pytest.raises(ValueError, match="mean and std need 3 values"):
        CIFAR10LT(data_dir=str(cifar10_dir), mean=(0.5,), std=(0.2,)).setup("fit")


def test_cifar_ssl_views_have_no_blur_and_keep_shape(cifar10_dir):
    from lt_imbalance.data.augment import build_ssl_transform

    names = [type(t).__name__ for t in build_ssl_transform(32, True, 3).transforms]
    assert "GaussianBlur" not in names and "RandomResizedCrop" in names
    dm = CIFAR10LT(data_dir=str(cifar10_dir), batch_size=8, ssl_views=True)
    dm.setup("fit")
    x, y, v1, v2 = next(iter(dm.train_dataloader()))
    assert v1.shape == (8, 3, 32, 32)


def _cao_reference(targets: np.ndarray, imbalance_ratio: float, seed: int) -> np.ndarray:
    """Cao et al. 2019's IMBALANCECIFAR procedure, written out as their code does it: the global
    legacy NumPy generator seeded once, img_max = len(data) / classes, n_c = int(img_max *
    (1 / rho) ** (c / (C - 1))), then per class in order np.where + np.random.shuffle + first n_c."""
    classes = np.unique(targets)
    img_max = len(targets) / len(classes)
    counts = [int(img_max * (1.0 / imbalance_ratio) ** (c / (len(classes) - 1.0))) for c in range(len(classes))]
    saved = np.random.get_state()
    try:
        np.random.seed(seed)
        chosen = []
        for the_class, the_img_num in zip(classes, counts):
            idx = np.where(targets == the_class)[0]
            np.random.shuffle(idx)
            chosen.append(idx[:the_img_num])
    finally:
        np.random.set_state(saved)
    return np.concatenate(chosen)


@pytest.mark.parametrize(("classes", "per_class", "ratio", "seed"), [(10, 300, 100, 0), (10, 60, 10, 3), (20, 100, 50, 0)])
def test_cao2019_split_selects_exactly_the_literature_indices(classes, per_class, ratio, seed):
    targets = np.random.default_rng(7).permutation(np.repeat(np.arange(classes), per_class))
    counts = long_tailed_counts(classes, per_class, ratio)
    ours = draw_cao2019(targets, counts, seed)
    expected = _cao_reference(targets, ratio, seed)
    assert np.array_equal(ours.indices, expected)


@pytest.mark.parametrize(("classes", "n_max"), [(10, 5000), (100, 500)])
@pytest.mark.parametrize("ratio", [10, 20, 50, 100, 200])
def test_our_counts_equal_cao2019_counts_on_the_real_sizes(classes, n_max, ratio):
    theirs = [int(n_max * (1.0 / ratio) ** (c / (classes - 1.0))) for c in range(classes)]
    assert long_tailed_counts(classes, n_max, ratio) == theirs


def test_cifar_configs_default_to_the_literature_split_and_record_it(cifar10_dir):
    from fakes import read_pickle_labels

    literature = CIFAR10LT(data_dir=str(cifar10_dir), batch_size=16, imbalance_ratio=100)
    targets = read_pickle_labels(cifar10_dir / "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], "labels")
    assert np.array_equal(literature.train_indices, _cao_reference(targets, 100, 0))
    assert literature.metadata["split_protocol"] == "cao2019"
    seeded = CIFAR10LT(data_dir=str(cifar10_dir), batch_size=16, imbalance_ratio=100, split_protocol="seeded")
    assert seeded.class_counts == literature.class_counts and not np.array_equal(
        np.sort(seeded.train_indices), np.sort(literature.train_indices)
    )
    with pytest.raises(ValueError, match="split_protocol cao2019 draws from the whole training set"):
        CIFAR10LT(data_dir=str(cifar10_dir), val_source="pool", val_fraction=0.0, val_per_class=5)
