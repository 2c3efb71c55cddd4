"""Tiny ImageNet-LT, MedMNIST, ISIC-style, EuroSAT-LT and tabular data on fake files in their real formats."""

import numpy as np
import pytest
import torch

from conftest import write_fake_eurosat, write_fake_isic, write_fake_medmnist, write_fake_table, write_fake_tiny_imagenet
from lt_imbalance.data import EuroSATLT, ISICLT, MedMNISTLT, TabularLT, TinyImageNetLT, long_tailed_counts


def _batch(dm, loader="train_dataloader"):
    dm.setup("fit")
    return next(iter(getattr(dm, loader)()))


# ---- Tiny ImageNet-LT -----------------------------------------------------------------------
def test_tiny_imagenet_lt_construction(tmp_path):
    root = write_fake_tiny_imagenet(tmp_path)
    dm = TinyImageNetLT(data_dir=str(root), imbalance_ratio=10, batch_size=4)
    assert dm.wnids == ["n01443537", "n01629819", "n01641577"]  # sorted, not wnids.txt order
    assert dm.class_names[0] == "n01443537: thing 0"
    assert dm.class_counts == long_tailed_counts(3, 20, 10)
    x, y = _batch(dm)
    assert x.shape == (4, 3, 64, 64) and x.dtype == torch.uint8
    assert dm.test_counts == [4, 4, 4] and dm.val_set is dm.test_set
    again = TinyImageNetLT(data_dir=str(root / "tiny-imagenet-200"), imbalance_ratio=10, batch_size=4)
    assert again.split_hash == dm.split_hash


def test_tiny_imagenet_bad_layouts(tmp_path):
    with pytest.raises(FileNotFoundError, match="tiny-imagenet-200.*wnids.txt.*val_annotations.txt.*Download"):
        TinyImageNetLT(data_dir=str(tmp_path / "none"))
    root = write_fake_tiny_imagenet(tmp_path / "a")
    ann = root / "tiny-imagenet-200" / "val" / "val_annotations.txt"
    ann.write_text(ann.read_text() + "val_x.JPEG\tn99999999\t0\t0\t1\t1\n")
    with pytest.raises(ValueError, match=r"val_annotations.txt, line 13: wnid 'n99999999' is not in wnids.txt"):
        TinyImageNetLT(data_dir=str(root), imbalance_ratio=2)
    ann.write_text("just-one-field\n")
    with pytest.raises(ValueError, match=r"line 1: expected"):
        TinyImageNetLT(data_dir=str(root), imbalance_ratio=2)


# ---- MedMNIST -------------------------------------------------------------------------------
def test_medmnist_uses_its_own_splits_and_natural_distribution(tmp_path):
    path = write_fake_medmnist(tmp_path / "dermamnist.npz")
    dm = MedMNISTLT(path=str(path), batch_size=8)
    assert dm.class_names[5] == "melanocytic nevi" and dm.num_channels == 3
    assert dm.class_counts == [60, 30, 15, 8, 5, 4, 3]
    x, y = _batch(dm)
    assert x.shape == (8, 3, 28, 28)
    assert len(dm.val_set) == len(np.load(path)["val_labels"]) and dm.metadata["validation_on"].startswith("the dataset's own")
    assert dm.test_counts == [30, 15, 7, 4, 2, 2, 1]


def test_medmnist_grey_larger_size_and_long_tailed_resplit(tmp_path):
    path = write_fake_medmnist(tmp_path / "organamnist_64.npz", num_classes=11, counts=(20,) * 11, size=64, rgb=False)
    dm = MedMNISTLT(path=str(path), profile="exponential", imbalance_ratio=8, batch_size=4)
    assert dm.num_channels == 1 and dm.image_size == 64 and dm.hflip is False  # left/right organs
    assert dm.class_counts == long_tailed_counts(11, 20, 8)
    assert dm.class_names[1] == "femur-left"


def test_medmnist_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="dermamnist.npz.*medmnist.com"):
        MedMNISTLT(path=str(tmp_path / "dermamnist.npz"))
    np.savez(tmp_path / "partial.npz", train_images=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(ValueError, match="lacks the arrays"):
        MedMNISTLT(path=str(tmp_path / "partial.npz"))
    arrays = {f"{s}_images": np.zeros((4, 28, 28), np.uint8) for s in ("train", "val", "test")}
    arrays.update({f"{s}_labels": np.eye(4, 14, dtype=np.uint8) for s in ("train", "val", "test")})
    np.savez(tmp_path / "chestmnist.npz", **arrays)
    with pytest.raises(ValueError, match="multi-label"):
        MedMNISTLT(path=str(tmp_path / "chestmnist.npz"))
    with pytest.raises(ValueError, match="4 class names given but .* has 7 classes"):
        MedMNISTLT(path=str(write_fake_medmnist(tmp_path / "x.npz")), class_names=["a", "b", "c", "d"])
    with pytest.raises(ValueError, match="has its own validation split; set val_fraction: 0"):
        MedMNISTLT(path=str(write_fake_medmnist(tmp_path / "somemnist.npz", num_classes=3, counts=(9, 9, 9))), val_fraction=0.1)


# ---- ISIC-style -----------------------------------------------------------------------------
def test_isic_folder_and_onehot_csv(tmp_path):
    images, csv_path = write_fake_isic(tmp_path)
    with pytest.warns(UserWarning, match=r"dropping class columns with no images: \['UNK'\]"):
        dm = ISICLT(image_dir=str(images), labels_csv=str(csv_path), image_size=32, batch_size=4, val_fraction=0.0)
    assert dm.class_names == ["MEL", "NV", "BCC", "DF"]
    assert [a + b for a, b in zip(dm.class_counts, dm.test_counts if hasattr(dm, "test_counts") else [0] * 4)]
    x, y = _batch(dm)
    assert x.shape == (4, 3, 32, 32)
    assert [a + b for a, b in zip(dm.class_counts, dm.test_counts)] == [12, 30, 8, 4]


def test_isic_bad_labels_and_missing_images(tmp_path):
    images, csv_path = write_fake_isic(tmp_path)
    lines = csv_path.read_text().splitlines()
    csv_path.write_text("\n".join(lines[:3] + [lines[3].replace("1.0", "0.0")] + lines[4:]) + "\n")
    with pytest.raises(ValueError, match=r"data row 3 \(ISIC_0000002\): the class columns .* sum to 0, not 1"):
        ISICLT(image_dir=str(images), labels_csv=str(csv_path))
    with pytest.raises(ValueError, match=r"class columns \['SCC'\] are not in"):
        ISICLT(image_dir=str(images), labels_csv=str(csv_path), class_columns=["MEL", "SCC"])
    with pytest.raises(ValueError, match="has no image column 'isic_id'"):
        ISICLT(image_dir=str(images), labels_csv=str(csv_path), image_column="isic_id")
    images2, csv2 = write_fake_isic(tmp_path / "b")
    (images2 / "ISIC_0000005.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"1 images listed in .* are not in .*ISIC_0000005"):
        ISICLT(image_dir=str(images2), labels_csv=str(csv2))


# ---- EuroSAT-LT -----------------------------------------------------------------------------
def test_eurosat_lt_balanced_test_and_long_tailed_train(tmp_path):
    root = write_fake_eurosat(tmp_path)
    dm = EuroSATLT(data_dir=str(root), test_per_class=10, imbalance_ratio=10, batch_size=4, val_fraction=0.0)
    assert dm.class_names == ["AnnualCrop", "Forest", "Highway", "River"]
    assert dm.class_counts == long_tailed_counts(4, 30, 10)
    x, y = _batch(dm)
    assert x.shape == (4, 3, 64, 64)
    assert dm.test_counts == [10] * 4
    assert len(dm.mean) == 3 and all(0 < m < 1 for m in dm.mean)  # computed from the training images


def test_eurosat_missing_folder_and_too_large_test(tmp_path):
    with pytest.raises(FileNotFoundError, match="EuroSATLT: no dataset at .*eurosat.*2750.*EuroSAT.zip"):
        EuroSATLT(data_dir=str(tmp_path / "none"))
    root = write_fake_eurosat(tmp_path / "a", per_class=5)
    with pytest.raises(ValueError, match="Lower test_per_class"):
        EuroSATLT(data_dir=str(root), test_per_class=10)


# ---- tabular --------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_tabular_csv_and_parquet(tmp_path, suffix):
    path = write_fake_table(tmp_path / f"table{suffix}")
    dm = TabularLT(path=str(path), target="label", drop_columns=["id"], batch_size=8, ssl_views=True)
    assert dm.class_names == ["class_0", "class_1", "class_2"]
    assert sum(dm.class_counts) + sum(dm.val_counts) == 91  # 120 rows minus floor(25%) per class: 20 + 7 + 2
    assert dm.num_channels == 2 + 4  # signal, noise + colour one-hot (blue, green, red, missing)
    x, y, v1, v2 = _batch(dm)
    assert x.dtype == torch.float32 and x.shape == (8, 6) and not torch.equal(v1, v2)


def test_tabular_preprocessing_is_fitted_on_the_training_split_only(tmp_path):
    path = write_fake_table(tmp_path / "t.csv")
    dm = TabularLT(path=str(path), target="label", drop_columns=["id"], categorical=["colour"], val_fraction=0.2)
    train = dm._pool[0][dm.train_indices]
    assert torch.allclose(train[:, 0].mean(), torch.tensor(0.0), atol=1e-5)  # standardised on training rows
    assert torch.allclose(train[:, 0].std(unbiased=False), torch.tensor(1.0), atol=1e-4)
    everything = dm._pool[0]
    assert not torch.allclose(everything[:, 0].mean(), torch.tensor(0.0), atol=1e-3)  # val rows did not shape it


def test_tabular_long_tailed_resplit(tmp_path):
    path = write_fake_table(tmp_path / "t.csv", counts=(60, 60, 60))
    dm = TabularLT(path=str(path), target="label", profile="exponential", imbalance_ratio=9, val_fraction=0.0)
    assert dm.class_counts == long_tailed_counts(3, 45, 9)


def test_tabular_bad_input(tmp_path):
    path = write_fake_table(tmp_path / "t.csv")
    with pytest.raises(ValueError, match=r"no target column 'species'; its columns are \['id', 'signal'"):
        TabularLT(path=str(path), target="species")
    with pytest.raises(FileNotFoundError, match="table .*nope.csv' not found"):
        TabularLT(path=str(tmp_path / "nope.csv"), target="label")
    test = write_fake_table(tmp_path / "test.csv", counts=(5, 5, 5, 5))
    with pytest.raises(ValueError, match=r"target classes \['class_3'\] do not occur in the training table"):
        TabularLT(path=str(path), target="label", test_path=str(test))
    with pytest.raises(ValueError, match="augmentation: none"):
        TabularLT(path=str(path), target="label", augmentation="standard")
    with pytest.raises(ValueError, match="exactly one of path"):
        TabularLT()


def test_tabular_unseen_category_in_test_encodes_to_zeros(tmp_path):
    import pandas as pd

    train = write_fake_table(tmp_path / "train.csv")
    test_frame = pd.read_csv(write_fake_table(tmp_path / "test.csv", counts=(3, 3, 3), seed=1))
    test_frame["colour"] = "purple"
    test_frame.to_csv(tmp_path / "test.csv", index=False)
    dm = TabularLT(path=str(train), target="label", drop_columns=["id"], test_path=str(tmp_path / "test.csv"))
    assert torch.all(dm._test[0][:, 2:] == 0)


def test_bundled_penguins_table():
    dm = TabularLT(builtin="penguins")
    assert dm.class_names == ["Adelie", "Chinstrap", "Gentoo"] and dm.num_channels == 11
