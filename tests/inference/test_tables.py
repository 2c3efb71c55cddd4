"""Table encoding from the checkpoint's numbers equals scikit-learn's fitted transform."""

import numpy as np

from fakes import write_fake_table
from lt_imbalance.data import TabularLT
from lt_imbalance.inference.tables import encode_table


def test_encoding_without_scikit_learn_equals_the_fitted_transform(tmp_path):
    import pandas as pd

    path = write_fake_table(tmp_path / "t.csv")
    dm = TabularLT(path=str(path), target="label", drop_columns=["id"])
    spec = dm.input_spec()
    frame = pd.read_csv(path).drop(columns=["id", "label"])
    frame.loc[0, "colour"] = "purple"  # unseen in training: all zeros
    ours = encode_table(frame, spec.preprocessing)
    table = dm.table
    theirs = dm._fit_encoder(table.pool.iloc[dm.train_indices], None).transform(frame)
    assert ours.shape == theirs.shape == (len(frame), dm.input_shape[0])
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
    assert ours[0, 2:].sum() == 0
