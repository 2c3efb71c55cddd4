"""Shared fixtures: fake CIFAR pickle folders in the real format (session-wide, written once)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests in sub-folders import fakes / helpers

from fakes import write_fake_cifar10, write_fake_cifar100  # noqa: E402


@pytest.fixture(scope="session")
def cifar10_dir(tmp_path_factory) -> Path:
    return write_fake_cifar10(tmp_path_factory.mktemp("cifar10"))


@pytest.fixture(scope="session")
def cifar100_dir(tmp_path_factory) -> Path:
    return write_fake_cifar100(tmp_path_factory.mktemp("cifar100"))


@pytest.fixture(autouse=True)
def _restore_deterministic_algorithms():
    """Trainer(deterministic=True) switches torch's global deterministic mode on and leaves it on;
    restore it after each test so that one test's setting does not change the next one's code paths."""
    import torch

    before = torch.are_deterministic_algorithms_enabled()
    yield
    torch.use_deterministic_algorithms(before)
