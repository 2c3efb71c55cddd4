"""ImageFolderLT on generated class-per-folder trees (PNG and JPEG, mixed channel counts)."""

from pathlib import Path

import pytest
import torch

from fakes import write_image_folder
from lt_imbalance.data import ImageFolderLT, long_tailed_counts


def _first_batch(dm):
    dm.setup("fit")
    return next(iter(dm.train_dataloader()))


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
    )  # fmt: skip
    assert dm.class_counts == long_tailed_counts(4, 20, 10)
    x, _ = _first_batch(dm)
    assert x.shape == (2, 1, 8, 8)
    assert dm.test_counts == [3, 3, 3, 3]


def test_statistics_of_streamed_images_come_from_decoded_training_images(tmp_path):
    root = write_image_folder(tmp_path / "train", {"a": 6, "b": 6})
    dm = ImageFolderLT(root=str(root), image_size=8, in_memory=False, batch_size=2, val_fraction=0.0)
    dm.setup("fit")
    decoded = torch.stack([dm.train_set.load(i) for i in range(len(dm.train_set))]).float() / 255
    assert dm.mean == pytest.approx(decoded.mean(dim=(0, 2, 3)).tolist(), abs=1e-5)


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
        ImageFolderLT(root=str(root2), test_root=str(test), batch_size=2).class_counts
    with pytest.raises(ValueError, match="test_fraction must lie in"):
        ImageFolderLT(root=str(root2), test_fraction=0.0, batch_size=2)
    with pytest.raises(ValueError, match="mean and std need 1 values"):
        ImageFolderLT(root=str(root2), channels=1, mean=(0.5, 0.5, 0.5), std=(0.2, 0.2, 0.2), batch_size=2)


def test_a_one_class_folder_is_told_it_needs_two_classes(tmp_path):
    root = write_image_folder(tmp_path / "train", {"only": 10})
    with pytest.raises(ValueError, match="the training data has 1 class; a classifier needs at least two classes"):
        ImageFolderLT(root=str(root), batch_size=2).class_counts


def test_corrupt_image_names_the_file(tmp_path):
    root = write_image_folder(tmp_path / "train", {"a": 3, "b": 3})
    (root / "a" / "broken.png").write_bytes(b"not an image")
    dm = ImageFolderLT(root=str(root), batch_size=2, test_fraction=0.3, val_fraction=0.0)
    with pytest.raises(OSError, match="broken.png"):
        dm.setup("fit")


def test_the_cifar_config_trains_on_a_users_folder_without_extra_flags(tmp_path, monkeypatch):
    """configs/cifar10_lt/erm.yaml sets device_data: true; a user's folder of a few thousand small images
    is held in memory by the loading rule, so the config works as it is with only the data swapped."""
    from lt_imbalance.commands.lightning_cli import build_cli

    root = write_image_folder(tmp_path / "train", {f"class_{c}": 200 for c in range(10)}, size=32)
    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    cli = build_cli(
        ["fit", "--config", "configs/cifar10_lt/erm.yaml", "--data", "ImageFolderLT", "--data.root", str(root), "--data.image_size", "32",
         "--trainer.fast_dev_run", "true", "--trainer.default_root_dir", str(tmp_path / "runs")]
    )  # fmt: skip
    assert cli.datamodule.device_data and cli.datamodule.loading.name == "device" and cli.trainer.global_step == 1
