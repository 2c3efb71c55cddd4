"""Shared fixtures: fake CIFAR pickle folders in the real format and a model trained for one epoch
through the command (session-wide, made once)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests in sub-folders import fakes / helpers
sys.path.insert(0, str(Path(__file__).resolve().parent / "data"))  # and the golden data snapshots

import lightning.pytorch  # noqa: E402, F401  (Lightning's log handler binds the real stderr before a test captures it;

# the `lt-imbalance` entry point imports Lightning only when a command needs it)
from fakes import write_fake_cifar10, write_fake_cifar100  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the ``long_running`` tests first: with ``make test``'s two workers taking one test at a
    time (``--maxschedchunk 1``), the short tests then fill in around them and both workers finish
    together instead of one waiting out a long test at the end."""
    items.sort(key=lambda item: item.get_closest_marker("long_running") is None)


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


def _train(tmp_path_factory, config: str, *extra: str) -> Path:
    run = tmp_path_factory.mktemp("run")
    from lt_imbalance.commands.lightning_cli import build_cli

    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        build_cli(
            [
                "fit",
                "--config",
                config,
                "--trainer.max_epochs",
                "1",
                "--trainer.default_root_dir",
                str(run),
                "--trainer.enable_progress_bar",
                "false",
                *extra,
            ]
        )
    finally:
        os.chdir(cwd)
    return next(run.rglob("last.ckpt"))


@pytest.fixture(scope="session")
def digits_checkpoint(tmp_path_factory) -> Path:
    """last.ckpt of digits-LT (ERM) after one epoch."""
    return _train(tmp_path_factory, "configs/digits_lt_erm.yaml")


@pytest.fixture(scope="session")
def digits_balanced_softmax_checkpoint(tmp_path_factory) -> Path:
    """last.ckpt of digits-LT with Balanced Softmax and another seed, after one epoch (a second ensemble member)."""
    return _train(tmp_path_factory, "configs/digits_lt_erm.yaml", "--model.init_args.loss", "balanced_softmax", "--seed_everything", "1")


@pytest.fixture(scope="session")
def train_checkpoint(tmp_path_factory):
    """Train any config for one epoch and return its last.ckpt."""
    return lambda factory, config: _train(factory, config)
