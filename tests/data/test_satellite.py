"""EuroSAT-LT on a fake folder in torchvision's EuroSAT layout."""

import pytest

from fakes import write_fake_eurosat
from lt_imbalance.data import EuroSATLT, long_tailed_counts


def _batch(dm, loader="train_dataloader"):
    dm.setup("fit")
    return next(iter(getattr(dm, loader)()))


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
        EuroSATLT(data_dir=str(root), test_per_class=10).class_counts
