import pytest
import torch

from conftest import write_image_folder
from lt_imbalance.data import CIFAR10LT, CIFAR100LT, DigitsLT, ImageFolderLT, long_tailed_counts
from lt_imbalance.data.augment import POLICIES, build_train_transform


def _first_batch(dm, loader="train_dataloader"):
    dm.setup("fit")
    return next(iter(getattr(dm, loader)()))


def test_cifar10_lt_counts_known_at_init_and_balanced_test(cifar10_dir):
    dm = CIFAR10LT(data_dir=str(cifar10_dir), batch_size=16, imbalance_ratio=100)
    assert dm.num_classes == 10 and dm.num_channels == 3
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


def test_bad_ratio_batch_size_and_policy(cifar10_dir):
    with pytest.raises(ValueError, match="imbalance_ratio must be a finite number >= 1"):
        CIFAR10LT(data_dir=str(cifar10_dir), imbalance_ratio=0.5)
    with pytest.raises(ValueError, match="batch_size=4096 is larger than the training split"):
        CIFAR10LT(data_dir=str(cifar10_dir), batch_size=4096)
    with pytest.raises(ValueError, match="unknown augmentation policy 'autoaug'; choose one of none, standard"):
        CIFAR10LT(data_dir=str(cifar10_dir), augmentation="autoaug")
    with pytest.raises(ValueError, match="zero samples"):
        CIFAR10LT(data_dir=str(cifar10_dir), imbalance_ratio=400)
    with pytest.raises(ValueError, match="profile 'none' keeps the data's own distribution"):
        CIFAR10LT(data_dir=str(cifar10_dir), profile="none", imbalance_ratio=100)


def test_digits_lt_is_real_and_long_tailed():
    dm = DigitsLT(imbalance_ratio=10, val_fraction=0.2)
    assert dm.num_classes == 10 and dm.num_channels == 1 and dm.hflip is False
    total = [a + b for a, b in zip(dm.class_counts, dm.val_counts)]
    assert total == long_tailed_counts(10, min(total[0], 124), 10)
    x, y = _first_batch(dm)
    assert x.shape[1:] == (1, 8, 8) and x.dtype == torch.uint8 and x.max() > 200
    assert dm.test_counts == [50] * 10


@pytest.mark.parametrize("policy", POLICIES)
def test_every_policy_keeps_shape_and_dtype_and_is_random_per_sample(policy):
    transform = build_train_transform(policy, 32)
    x = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8)
    if policy == "none":
        assert transform is None
        return
    torch.manual_seed(0)
    outs = [transform(x) for _ in range(8)]
    assert all(o.shape == x.shape and o.dtype == torch.uint8 for o in outs)
    assert any(not torch.equal(outs[0], o) for o in outs[1:])


def test_image_folder_natural_distribution_with_mixed_channels(tmp_path):
    root = write_image_folder(tmp_path / "train", {"cat": 30, "dog": 12, "eel": 5}, modes=("RGB", "L", "RGBA"))
    dm = ImageFolderLT(root=str(root), image_size=16, batch_size=4, test_fraction=0.2, val_fraction=0.0)
    assert dm.class_names == ["cat", "dog", "eel"]
    assert dm.class_counts == [24, 10, 4]  # natural distribution minus the stratified 20% test hold-out
    x, y = _first_batch(dm)
    assert x.shape == (4, 3, 16, 16) and x.dtype == torch.uint8
    assert dm.test_counts == [6, 2, 1]


def test_image_folder_long_tailed_resplit_and_lazy_decoding(tmp_path):
    root = write_image_folder(tmp_path / "train", {f"c{i}": 20 for i in range(4)})
    test_root = write_image_folder(tmp_path / "test", {f"c{i}": 3 for i in range(4)}, seed=1)
    dm = ImageFolderLT(
        root=str(root), test_root=str(test_root), profile="exponential", imbalance_ratio=10,
        image_size=8, channels=1, mean=(0.5,), std=(0.25,), in_memory=False, val_fraction=0.0, batch_size=2,
    )
    assert dm.class_counts == long_tailed_counts(4, 20, 10)
    x, _ = _first_batch(dm)
    assert x.shape == (2, 1, 8, 8)
    assert dm.test_counts == [3, 3, 3, 3]


def test_image_folder_errors_name_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="image folder .*missing.* not found; expected"):
        ImageFolderLT(root=str(tmp_path / "missing"))
    root = write_image_folder(tmp_path / "train", {"a": 4, "b": 4})
    (root / "c").mkdir()
    with pytest.raises(ValueError, match="class 'c' has no images in"):
        ImageFolderLT(root=str(root), batch_size=2)
    root2 = write_image_folder(tmp_path / "train2", {"a": 4, "b": 4})
    test = write_image_folder(tmp_path / "test2", {"a": 1, "zebra": 1})
    with pytest.raises(ValueError, match=r"class folders \['zebra'\] that the training folder does not have"):
        ImageFolderLT(root=str(root2), test_root=str(test), batch_size=2)
    with pytest.raises(ValueError, match="test_fraction must lie in"):
        ImageFolderLT(root=str(root2), test_fraction=0.0, batch_size=2)
    with pytest.raises(ValueError, match="mean and std need 1 values"):
        ImageFolderLT(root=str(root2), channels=1, mean=(0.5, 0.5, 0.5), std=(0.2, 0.2, 0.2), batch_size=2)


def test_corrupt_image_names_the_file(tmp_path):
    root = write_image_folder(tmp_path / "train", {"a": 3, "b": 3})
    (root / "a" / "broken.png").write_bytes(b"not an image")
    dm = ImageFolderLT(root=str(root), batch_size=2, test_fraction=0.3, val_fraction=0.0)
    with pytest.raises(OSError, match="broken.png"):
        dm.setup("fit")


def test_ssl_views_are_two_random_views_per_image_and_normalised():
    dm = DigitsLT(batch_size=16, ssl_views=True)
    dm.setup("fit")
    x, y, v1, v2 = next(iter(dm.train_dataloader()))
    assert v1.shape == v2.shape == x.shape and v1.dtype == torch.uint8
    assert not torch.equal(v1, v2)
    xf, yf, v1f, v2f = dm.on_after_batch_transfer((x, y, v1, v2), 0)
    assert v1f.dtype == torch.float32 and torch.equal(yf, y)
    val = next(iter(dm.val_dataloader()))
    assert len(val) == 2  # evaluation batches carry no views


def test_cifar_ssl_views_have_no_blur_and_keep_shape(cifar10_dir):
    from lt_imbalance.data.augment import build_ssl_transform

    names = [type(t).__name__ for t in build_ssl_transform(32, True, 3).transforms]
    assert "GaussianBlur" not in names and "RandomResizedCrop" in names
    dm = CIFAR10LT(data_dir=str(cifar10_dir), batch_size=8, ssl_views=True)
    x, y, v1, v2 = _first_batch(dm)
    assert v1.shape == (8, 3, 32, 32)


def test_global_batch_size_is_split_across_devices():
    from types import SimpleNamespace

    dm = DigitsLT(batch_size=64)
    dm.trainer = SimpleNamespace(world_size=4)
    assert dm.per_device_batch_size == 16
    dm.trainer = SimpleNamespace(world_size=3)
    with pytest.warns(UserWarning, match="global batch_size=64 is not divisible by 3 devices; each loads 21"):
        assert dm.per_device_batch_size == 21
