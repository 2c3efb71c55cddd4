"""The learning-rate schedule against its closed form."""

import math

import pytest
import torch

from lt_imbalance.training.optimization import LRSchedule, lr_factor


def test_lr_factor_closed_form():
    assert lr_factor(0, 4, 100) == pytest.approx(0.25)
    assert lr_factor(3, 4, 100) == pytest.approx(1.0)
    assert lr_factor(4, 4, 100) == pytest.approx(1.0)
    assert lr_factor(52, 4, 100) == pytest.approx(0.5 * (1 + math.cos(math.pi * 48 / 96)))
    assert lr_factor(100, 4, 100, min_ratio=0.1) == pytest.approx(0.1)
    assert lr_factor(60, 4, 100, "constant") == 1.0


def test_scheduler_converts_warmup_epochs_to_steps():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = LRSchedule(warmup_epochs=2).scheduler(optimizer, total_steps=100, epochs=10)  # 10 steps per epoch
    lrs = []
    for _ in range(21):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[:20] == pytest.approx([lr_factor(s, 20, 100) for s in range(20)])
    assert lrs[19] == pytest.approx(1.0)


def test_bad_schedules_are_refused():
    with pytest.raises(ValueError, match="unknown lr_schedule 'step'"):
        LRSchedule("step")
    with pytest.raises(ValueError, match="warmup_epochs >= 0"):
        LRSchedule(warmup_epochs=-1)
