"""The data-module base: the CLI lists every module's shared arguments, the typed hand-over of the
data, and the validation sources."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lt_imbalance.data import DataPart, DatasetParts, ImageDataModule, LongTailedDataModule

ROOT = Path(__file__).resolve().parents[2]
MODULES = ("DigitsLT", "CIFAR10LT", "CIFAR100LT", "ImageFolderLT", "TinyImageNetLT", "MedMNISTLT", "ISICLT", "EuroSATLT", "TabularLT")
SHARED = ("batch_size", "num_workers", "imbalance_ratio", "profile", "split_seed", "val_fraction", "ssl_views", "sampler")
IMAGE = ("augmentation", "device_data", "mean", "std")


@pytest.fixture(scope="module")
def help_texts() -> dict[str, str]:
    """``lt-imbalance fit --data.help <Module>`` of every module, from one interpreter."""
    code = (
        "import contextlib, io, json, sys\n"
        "from lt_imbalance.commands.lightning_cli import build_cli\n"
        "out = {}\n"
        f"for name in {list(MODULES)!r}:\n"
        "    buffer = io.StringIO()\n"
        "    with contextlib.redirect_stdout(buffer), contextlib.suppress(SystemExit):\n"
        "        build_cli(['fit', '--data.help', name])\n"
        "    out[name] = buffer.getvalue()\n"
        "print(json.dumps(out))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300, check=True)
    import json

    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", MODULES)
def test_help_lists_the_base_arguments_of_every_module(help_texts, name):
    text = help_texts[name]
    expected = SHARED + (() if name == "TabularLT" else IMAGE)
    missing = [arg for arg in expected if f"--data.{arg} " not in text and f"--data.{arg}\n" not in text]
    assert not missing, f"{name} --help lacks {missing}:\n{text}"


class ToyImages(ImageDataModule):
    """A data module written against the public contract only: ``load_data`` returns the parts."""

    def load_data(self) -> DatasetParts:
        g = torch.Generator().manual_seed(0)
        labels = np.repeat(np.arange(3), [30, 20, 10])
        images = torch.randint(0, 256, (60, 1, 4, 4), generator=g, dtype=torch.uint8)
        val = DataPart(np.array([0, 1, 2]), images[:3])
        return DatasetParts(
            ["a", "b", "c"], DataPart(labels, images), DataPart(labels[::5], images[::5]), val if self.has_official_val else None
        )


class ToyWithVal(ToyImages):
    has_official_val = True


def test_a_new_data_module_needs_only_load_data():
    dm = ToyImages(batch_size=4, imbalance_ratio=3, val_fraction=0.0)
    assert dm.class_counts == [10, 5, 3] and dm.input_shape == (1, 4, 4)  # n_max = 10 (the smallest class pool), rho 3
    dm.setup("fit")
    assert dm.val_set is dm.test_set and dm.validation_source() == "test set"
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 1, 4, 4)
    official = ToyWithVal(batch_size=4, imbalance_ratio=3, val_fraction=0.0)
    official.setup("fit")
    assert len(official.val_set) == 3 and official.validation_source() == "the dataset's own validation split"
    with pytest.raises(ValueError, match="has its own validation split; set val_fraction: 0"):
        ToyWithVal(val_fraction=0.1)


def test_parts_are_checked():
    with pytest.raises(ValueError, match="3 samples but 2 labels"):
        DataPart(np.array([0, 1]), torch.zeros(3, 1, 2, 2))

    class OutOfRange(ToyImages):
        def load_data(self):
            parts = super().load_data()
            return DatasetParts(["a", "b"], parts.pool, parts.test)

    with pytest.raises(ValueError, match=r"labels must lie in \[0, 1\] \(2 class names\)"):
        OutOfRange().class_counts
    with pytest.raises(NotImplementedError, match="must implement load_data"):
        LongTailedDataModule().class_counts


def test_a_balanced_validation_set_from_pool_images_the_training_split_does_not_use():
    from lt_imbalance.data import DigitsLT

    dm = DigitsLT(val_source="pool", val_per_class=20, val_fraction=0.0, imbalance_ratio=10)
    assert dm.val_counts == [20] * 10 and dm.class_counts[0] > dm.class_counts[-1]
    assert not set(dm.train_indices) & set(dm.val_indices)
    assert dm.validation_source().startswith("balanced pool hold-out (20") and not dm.validates_on_test
    dm.setup("fit")
    assert len(dm.val_set) == 200 and dm.metadata["val_source"] == "pool" and dm.metadata["val_per_class"] == 20
    assert DigitsLT(val_fraction=0.0).validates_on_test
    with pytest.raises(ValueError, match="val_source: pool .* set val_fraction: 0"):
        DigitsLT(val_source="pool", val_fraction=0.2)
    with pytest.raises(ValueError, match=r"holds out 500 pool samples per class .* \(class, samples\)"):
        DigitsLT(val_source="pool", val_per_class=500, val_fraction=0.0).class_counts
    with pytest.raises(ValueError, match="unknown val_source 'test'"):
        DigitsLT(val_source="test")
