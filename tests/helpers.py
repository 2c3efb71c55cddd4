"""Small building blocks the tests share: a tiny network, an optimiser factory, a trainer."""

from __future__ import annotations

from functools import partial

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lt_imbalance import ImbalancedClassifier
from lt_imbalance.training.optimization import LRSchedule

COUNTS = [8, 4, 1]
CONSTANT = LRSchedule("constant")


def sgd(lr: float = 0.1, momentum: float = 0.9, weight_decay: float = 0.0):
    """An optimiser factory for ``ImbalancedClassifier(optimizer=...)``."""
    return partial(torch.optim.SGD, lr=lr, momentum=momentum, weight_decay=weight_decay)


class TinyNet(nn.Module):
    """5 features -> 4 (optionally BatchNorm) -> tanh; ``out_features`` = 4."""

    def __init__(self, batchnorm: bool = False):
        super().__init__()
        self.fc = nn.Linear(5, 4)
        self.bn = nn.BatchNorm1d(4) if batchnorm else nn.Identity()
        self.out_features = 4

    def forward(self, x):
        return torch.tanh(self.bn(self.fc(x)))


def tiny_batch(n: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 5, generator=g), torch.tensor([0, 0, 1, 2, 0, 1] * (n // 6 + 1))[:n]


def tiny_model(batchnorm: bool = False, lr: float = 0.1, momentum: float = 0.0, **kw) -> ImbalancedClassifier:
    """ImbalancedClassifier on :class:`TinyNet` with :data:`COUNTS`, constant learning rate."""
    torch.manual_seed(0)
    kw.setdefault("lr_schedule", CONSTANT)
    return ImbalancedClassifier(TinyNet(batchnorm), class_counts=COUNTS, optimizer=sgd(lr, momentum), **kw)


def fit_tiny(model, callbacks, steps: int = 1, n: int = 6, batch_size: int = 6, **trainer_kw) -> pl.Trainer:
    """Fit ``model`` on :func:`tiny_batch` (``n`` rows, in order) for ``steps`` optimisation steps,
    without the module's run defaults (no files: these tests look at single steps)."""
    model.run_defaults = False
    x, y = tiny_batch(n)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=False)
    trainer = pl.Trainer(
        max_steps=steps, callbacks=callbacks, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, limit_val_batches=0, **trainer_kw,
    )  # fmt: skip
    trainer.fit(model, train_dataloaders=loader)
    return trainer


def quiet_trainer(tmp_path, **kw) -> pl.Trainer:
    """A trainer without logger, checkpoints, progress bar or model summary; its files (e.g. the
    diagnostics' figures) go under ``tmp_path``."""
    kw.setdefault("max_epochs", 2)
    return pl.Trainer(
        default_root_dir=tmp_path, logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, **kw
    )


def fit_blobs(tmp_path, callbacks, epochs: int = 2):
    """``(data, model)``: an MLP fitted on the 2-D blobs (40 / 40 / 4 points) with ``callbacks``."""
    from lt_imbalance.demos.margins_2d import Blobs2D

    data = Blobs2D(counts=(40, 40, 4), test_per_class=10, batch_size=16)
    torch.manual_seed(0)
    model = ImbalancedClassifier(
        "mlp", backbone_kwargs={"hidden": (16,)}, class_counts=data.class_counts, input_shape=(2,), optimizer=sgd(0.05, 0.9, 2e-4)
    )
    quiet_trainer(tmp_path, max_epochs=epochs, callbacks=callbacks).fit(model, data)
    return data, model


def tensors(module: nn.Module) -> dict[str, torch.Tensor]:
    """The module's state dict without its non-tensor entries (the outputs owner's record)."""
    return {k: v for k, v in module.state_dict().items() if isinstance(v, torch.Tensor)}


def run_command(argv: list[str], capfd) -> tuple[int, str]:
    """``lt-imbalance ARGV`` in this process: its exit status and what it said (Lightning's info
    lines go to a handler made before the capture, so the file descriptors are read)."""
    from lt_imbalance.cli import main

    try:
        main(argv)
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    captured = capfd.readouterr()
    return code, captured.out + captured.err
