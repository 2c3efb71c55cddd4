"""MedMNIST (.npz) and ISIC-style (images + one-hot CSV) on fake files in their real formats."""

import numpy as np
import pytest

from fakes import write_fake_isic, write_fake_medmnist
from lt_imbalance.data import ISICLT, MedMNISTLT, long_tailed_counts


def _batch(dm, loader="train_dataloader"):
    dm.setup("fit")
    return next(iter(getattr(dm, loader)()))


def test_medmnist_uses_its_own_splits_and_natural_distribution(tmp_path):
    path = write_fake_medmnist(tmp_path / "dermamnist.npz")
    dm = MedMNISTLT(path=str(path), batch_size=8)
    assert dm.class_names[5] == "melanocytic nevi" and dm.input_shape == (3, 28, 28)
    assert dm.class_counts == [60, 30, 15, 8, 5, 4, 3]
    x, y = _batch(dm)
    assert x.shape == (8, 3, 28, 28)
    assert len(dm.val_set) == len(np.load(path)["val_labels"]) and dm.metadata["validation_on"].startswith("the dataset's own")
    assert dm.test_counts == [30, 15, 7, 4, 2, 2, 1]


def test_medmnist_grey_larger_size_and_long_tailed_resplit(tmp_path):
    path = write_fake_medmnist(tmp_path / "organamnist_64.npz", num_classes=11, counts=(20,) * 11, size=64, rgb=False)
    dm = MedMNISTLT(path=str(path), profile="exponential", imbalance_ratio=8, batch_size=4)
    assert dm.input_shape == (1, 64, 64) and dm.hflip is False  # left/right organs
    assert dm.class_counts == long_tailed_counts(11, 20, 8)
    assert dm.class_names[1] == "femur-left"


def test_medmnist_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="dermamnist.npz.*medmnist.com"):
        MedMNISTLT(path=str(tmp_path / "dermamnist.npz")).class_counts
    np.savez(tmp_path / "partial.npz", train_images=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(ValueError, match="lacks the arrays"):
        MedMNISTLT(path=str(tmp_path / "partial.npz")).class_counts
    arrays = {f"{s}_images": np.zeros((4, 28, 28), np.uint8) for s in ("train", "val", "test")}
    arrays.update({f"{s}_labels": np.eye(4, 14, dtype=np.uint8) for s in ("train", "val", "test")})
    np.savez(tmp_path / "chestmnist.npz", **arrays)
    with pytest.raises(ValueError, match="multi-label"):
        MedMNISTLT(path=str(tmp_path / "chestmnist.npz")).class_counts
    with pytest.raises(ValueError, match="4 class names given but .* has 7 classes"):
        MedMNISTLT(path=str(write_fake_medmnist(tmp_path / "x.npz")), class_names=["a", "b", "c", "d"]).class_counts
    with pytest.raises(ValueError, match="has its own validation split; set val_fraction: 0"):
        MedMNISTLT(path=str(write_fake_medmnist(tmp_path / "somemnist.npz", num_classes=3, counts=(9, 9, 9))), val_fraction=0.1)


def test_isic_folder_and_onehot_csv(tmp_path):
    images, csv_path = write_fake_isic(tmp_path)
    dm = ISICLT(image_dir=str(images), labels_csv=str(csv_path), image_size=32, batch_size=4, val_fraction=0.0)
    with pytest.warns(UserWarning, match=r"dropping class columns with no images: \['UNK'\]"):
        assert dm.class_names == ["MEL", "NV", "BCC", "DF"]
    x, y = _batch(dm)
    assert x.shape == (4, 3, 32, 32)
    assert [a + b for a, b in zip(dm.class_counts, dm.test_counts)] == [12, 30, 8, 4]


def test_isic_bad_labels_and_missing_images(tmp_path):
    images, csv_path = write_fake_isic(tmp_path)
    lines = csv_path.read_text().splitlines()
    csv_path.write_text("\n".join(lines[:3] + [lines[3].replace("1.0", "0.0")] + lines[4:]) + "\n")
    with pytest.raises(ValueError, match=r"data row 3 \(ISIC_0000002\): the class columns .* sum to 0, not 1"):
        ISICLT(image_dir=str(images), labels_csv=str(csv_path)).class_counts
    with pytest.raises(ValueError, match=r"class columns \['SCC'\] are not in"):
        ISICLT(image_dir=str(images), labels_csv=str(csv_path), class_columns=["MEL", "SCC"]).class_counts
    with pytest.raises(ValueError, match="has no image column 'isic_id'"):
        ISICLT(image_dir=str(images), labels_csv=str(csv_path), image_column="isic_id").class_counts
    images2, csv2 = write_fake_isic(tmp_path / "b")
    (images2 / "ISIC_0000005.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"1 images listed in .* are not in .*ISIC_0000005"):
        ISICLT(image_dir=str(images2), labels_csv=str(csv2)).class_counts
