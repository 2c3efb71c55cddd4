"""The epoch sampler: class-balanced and square-root re-sampling frequencies, a new draw each epoch,
disjoint shares under DDP, and its use by the data modules."""

import numpy as np
import pytest
from lightning.fabric.utilities.distributed import DistributedSamplerWrapper

from lt_imbalance.data import DigitsLT
from lt_imbalance.data.samplers import EpochSampler


def test_class_balanced_sampler_frequencies():
    labels = np.repeat(np.arange(4), [400, 100, 20, 4])
    sampler = EpochSampler(labels, "class_balanced", seed=0)
    drawn = np.concatenate([labels[[i for i, _ in sampler]] for _ in range(20)])
    freq = np.bincount(drawn, minlength=4) / len(drawn)
    assert freq == pytest.approx([0.25] * 4, abs=0.02)
    sqrt = EpochSampler(labels, "square_root", seed=0)
    freq = np.bincount(np.concatenate([labels[[i for i, _ in sqrt]] for _ in range(20)]), minlength=4) / (20 * len(labels))
    expected = np.sqrt([400, 100, 20, 4]) / np.sqrt([400, 100, 20, 4]).sum()
    assert freq == pytest.approx(expected, abs=0.02)


def test_sampler_is_new_each_epoch_and_disjoint_across_ranks():
    labels = np.repeat(np.arange(3), [50, 10, 2])
    first, second = list(EpochSampler(labels, "class_balanced", seed=1)), None
    sampler = EpochSampler(labels, "class_balanced", seed=1)
    assert list(sampler) == first
    second = list(sampler)
    assert second != first  # the next epoch draws again
    # under DDP every rank builds the same sampler; Lightning's wrapper splits the draw
    ranks = [
        DistributedSamplerWrapper(EpochSampler(labels, "class_balanced", seed=1), num_replicas=2, rank=r, shuffle=False) for r in range(2)
    ]
    positions = [list(r.__iter__()) for r in ranks]
    draw = first
    assert sorted(positions[0] + positions[1]) == sorted(draw)
    assert len(positions[0]) == len(positions[1]) == len(draw) // 2


def test_data_module_uses_the_sampler():
    dm = DigitsLT(batch_size=64, sampler="class_balanced")
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert isinstance(loader.sampler, EpochSampler) and loader.sampler.mode == "class_balanced"
    counts = np.zeros(10)
    for _ in range(10):
        for _, y in loader:
            counts += np.bincount(y.numpy(), minlength=10)
    assert counts / counts.sum() == pytest.approx([0.1] * 10, abs=0.025)
    with pytest.raises(ValueError, match="unknown sampler"):
        DigitsLT(sampler="balanced")
