"""Snapshots of every shipped data module on fake data in its real format: split hash, class counts,
and a hash of the first training, validation and test batches as the model receives them (after
the batch hooks: device augmentation, decoding, normalisation).

``tests/data/golden_batches.json`` was written by ``python tests/data/golden.py --write`` from
the code before the data layer was restructured; ``tests/data/test_golden_batches.py`` checks
that today's code gives the same, so earlier runs and the README's numbers still hold.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
GOLDEN = HERE / "golden_batches.json"
sys.path.insert(0, str(HERE.parent))

from fakes import (  # noqa: E402
    FAKE_LIST_COUNTS,
    write_fake_cifar10,
    write_fake_cifar100,
    write_fake_eurosat,
    write_fake_inaturalist,
    write_fake_isic,
    write_fake_list_benchmark,
    write_fake_medmnist,
    write_fake_tiny_imagenet,
    write_image_folder,
)

#: shipped config (or a data class built from a shipped config's model) -> the fake data it reads
CASES = (
    "configs/digits_lt.yaml",
    "configs/cifar10_lt/erm.yaml",
    "configs/cifar10_lt/tuned.yaml",
    "configs/cifar100_lt/erm.yaml",
    "configs/tiny_imagenet_lt/erm.yaml",
    "configs/medical/dermamnist_erm.yaml",
    "configs/satellite/eurosat_lt_erm.yaml",
    "configs/imagenet_lt/erm.yaml",
    "configs/places_lt/erm.yaml",
    "configs/inaturalist/erm.yaml",
    "configs/tabular/erm.yaml",
    "ImageFolderLT",
    "ISICLT",
)


def fake_overrides(base: Path) -> dict[str, list[str]]:
    """Per data class: overrides pointing a config at fake files (the same sizes as the CLI tests)."""
    natural = ["--data.imbalance_ratio", "1", "--data.profile", "none"]
    small = ["--data.init_args.num_workers", "0", "--data.init_args.batch_size", "8"]
    lists = [*small, "--data.init_args.num_classes", str(len(FAKE_LIST_COUNTS)), "--data.init_args.image_size", "32",
             "--data.init_args.resize_size", "36"]  # fmt: skip
    folder = write_image_folder(base / "folder", {"a": 30, "b": 12, "c": 6}, size=12, modes=("RGB", "L"))
    test_folder = write_image_folder(base / "folder_test", {"a": 4, "b": 4, "c": 4}, size=12, seed=1)
    isic_images, isic_truth = write_fake_isic(base / "isic")
    # fmt: off
    return {
        "CIFAR10LT": ["--data.init_args.data_dir", str(write_fake_cifar10(base / "c10")), "--data.init_args.num_workers", "0"],
        "CIFAR100LT": ["--data.init_args.data_dir", str(write_fake_cifar100(base / "c100")), "--data.init_args.num_workers", "0"],
        "TinyImageNetLT": ["--data.init_args.data_dir", str(write_fake_tiny_imagenet(base / "tiny")), "--data.init_args.imbalance_ratio", "10", *small],
        "MedMNISTLT": ["--data.init_args.path", str(write_fake_medmnist(base / "derma.npz")), *small],
        "ImageNetLT": ["--data.init_args.data_dir", str(write_fake_list_benchmark(base / "imagenet", "imagenet")), *lists],
        "PlacesLT": ["--data.init_args.data_dir", str(write_fake_list_benchmark(base / "places", "places")), *lists],
        "INaturalist2018": ["--data.init_args.data_dir", str(write_fake_inaturalist(base / "inat")), *lists],
        "EuroSATLT": ["--data.init_args.data_dir", str(write_fake_eurosat(base / "eurosat", per_class=30)),
                      "--data.init_args.test_per_class", "5", "--data.init_args.imbalance_ratio", "10", *small],
        "ImageFolderLT": ["--data", "ImageFolderLT", "--data.root", str(folder), "--data.test_root", str(test_folder),
                          "--data.image_size", "12", "--data.batch_size", "4", "--data.val_fraction", "0.2", *natural],
        "ISICLT": ["--data", "ISICLT", "--data.image_dir", str(isic_images), "--data.labels_csv", str(isic_truth),
                   "--data.image_size", "16", "--data.batch_size", "4", *natural],
    }
    # fmt: on


def tensor_hash(t: torch.Tensor) -> str:
    t = t.detach().cpu().contiguous()
    return hashlib.sha256(str(t.dtype).encode() + str(tuple(t.shape)).encode() + t.numpy().tobytes()).hexdigest()[:16]


def batch_hash(dm, batch) -> list[str]:
    batch = dm.on_before_batch_transfer(batch, 0)
    batch = dm.on_after_batch_transfer(batch, 0)
    return [tensor_hash(t) for t in batch]


def snapshot(case: str, overrides: dict[str, list[str]]) -> dict:
    from lt_imbalance.commands.lightning_cli import build_cli

    if case.endswith(".yaml"):
        import yaml

        data_class = yaml.safe_load((ROOT / case).read_text())["data"]["class_path"]
        args = ["--config", case, *overrides.get(data_class, [])]
    else:
        args = ["--config", "configs/digits_lt_erm.yaml", *overrides[case]]
    torch.manual_seed(0)
    np.random.seed(0)
    tabular = "tabular" in case
    tiny_model = ["--model.init_args.backbone", "mlp" if tabular else "resnet20", "--model.init_args.backbone_kwargs", "null"]
    cli = build_cli([*args, *tiny_model, "--seed_everything", "0"], run=False)  # the model does not touch the data here
    dm = cli.datamodule
    dm.setup("fit")
    record = {"split_hash": dm.split_hash, "class_counts": list(dm.class_counts), "val_counts": list(dm.val_counts)}
    loader = iter(dm.train_dataloader())
    record["train"] = [batch_hash(dm, next(loader)) for _ in range(2)]
    record["val"] = batch_hash(dm, next(iter(dm.val_dataloader())))
    record["test"] = batch_hash(dm, next(iter(dm.test_dataloader())))
    return record


def snapshots(base: Path) -> dict[str, dict]:
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        overrides = fake_overrides(base)
        return {case: snapshot(case, overrides) for case in CASES}
    finally:
        os.chdir(cwd)


if __name__ == "__main__":
    import tempfile

    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/data/golden.py --write")
    with tempfile.TemporaryDirectory() as folder:
        GOLDEN.write_text(json.dumps(snapshots(Path(folder)), indent=1) + "\n")
    print(f"wrote {GOLDEN}")
