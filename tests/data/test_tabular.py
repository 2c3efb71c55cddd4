"""TabularLT on generated CSV / Parquet tables and the bundled penguins."""

import pytest
import torch

from fakes import write_fake_table
from lt_imbalance.data import TabularLT, long_tailed_counts


def _batch(dm, loader="train_dataloader"):
    dm.setup("fit")
    return next(iter(getattr(dm, loader)()))


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_tabular_csv_and_parquet(tmp_path, suffix):
    path = write_fake_table(tmp_path / f"table{suffix}")
    dm = TabularLT(path=str(path), target="label", drop_columns=["id"], batch_size=8, ssl_views=True)
    assert dm.class_names == ["class_0", "class_1", "class_2"]
    assert sum(dm.class_counts) + sum(dm.val_counts) == 91  # 120 rows minus floor(25%) per class: 20 + 7 + 2
    assert dm.input_shape == (2 + 4,)  # signal, noise + colour one-hot (blue, green, red, missing)
    x, y, v1, v2 = _batch(dm)
    assert x.dtype == torch.float32 and x.shape == (8, 6) and not torch.equal(v1, v2)


def test_tabular_preprocessing_is_fitted_on_the_training_split_only(tmp_path):
    path = write_fake_table(tmp_path / "t.csv")
    dm = TabularLT(path=str(path), target="label", drop_columns=["id"], categorical=["colour"], val_fraction=0.2)
    pool = dm.parts.pool.samples
    train = pool[dm.train_indices]
    assert torch.allclose(train[:, 0].mean(), torch.tensor(0.0), atol=1e-5)  # standardised on training rows
    assert torch.allclose(train[:, 0].std(unbiased=False), torch.tensor(1.0), atol=1e-4)
    everything = pool
    assert not torch.allclose(everything[:, 0].mean(), torch.tensor(0.0), atol=1e-3)  # val rows did not shape it


def test_tabular_long_tailed_resplit(tmp_path):
    path = write_fake_table(tmp_path / "t.csv", counts=(60, 60, 60))
    dm = TabularLT(path=str(path), target="label", profile="exponential", imbalance_ratio=9, val_fraction=0.0)
    assert dm.class_counts == long_tailed_counts(3, 45, 9)


def test_tabular_bad_input(tmp_path):
    path = write_fake_table(tmp_path / "t.csv")
    with pytest.raises(ValueError, match=r"no target column 'species'; its columns are \['id', 'signal'"):
        TabularLT(path=str(path), target="species").class_counts
    with pytest.raises(FileNotFoundError, match="table .*nope.csv' not found"):
        TabularLT(path=str(tmp_path / "nope.csv"), target="label").class_counts
    test = write_fake_table(tmp_path / "test.csv", counts=(5, 5, 5, 5))
    with pytest.raises(ValueError, match=r"target classes \['class_3'\] do not occur in the training table"):
        TabularLT(path=str(path), target="label", test_path=str(test)).class_counts
    with pytest.raises(TypeError, match="augmentation"):  # tables take no image augmentation (SSL views corrupt features instead)
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
    assert torch.all(dm.parts.test.samples[:, 2:] == 0)


def test_bundled_penguins_table():
    dm = TabularLT(builtin="penguins")
    assert dm.class_names == ["Adelie", "Chinstrap", "Gentoo"] and dm.input_shape == (11,)
    assert dm.sample_unit == "rows"


def test_a_table_of_ones_own_with_a_builtin_config_says_how(tmp_path):
    with pytest.raises(ValueError, match="add --data.init_args.builtin null"):
        TabularLT(path=str(tmp_path / "mine.csv"), builtin="penguins")


def test_a_last_training_batch_of_one_is_dropped_so_batchnorm_trains(tmp_path, monkeypatch):
    """151 training rows in batches of 30 leave one row: BatchNorm cannot train on it, so that batch
    (and only such a batch) is dropped."""
    from pathlib import Path

    from lt_imbalance.commands.lightning_cli import build_cli

    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    data = ["--config", "configs/tabular/erm.yaml", "--data.init_args.builtin", "breast_cancer", "--data.init_args.imbalance_ratio", "20"]
    cli = build_cli(
        ["fit", *data, "--data.init_args.batch_size", "30", "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(tmp_path)]
    )
    assert sum(cli.datamodule.class_counts) == 151 and cli.trainer.num_training_batches == 5  # 5 x 30, the single row left out
    other = build_cli([*data, "--data.init_args.batch_size", "32"], run=False).datamodule
    other.setup("fit")
    assert len(other.train_dataloader()) == 5  # 4 x 32 + 23: the short last batch is kept
