"""The 2-D margin demo: an imbalanced toy problem where one sees decision boundaries move.

Three Gaussian blobs (sd 0.8) centred at (-2.5, -1), (2.5, -1) and (0, 2); the third class is
100x rarer (300 / 300 / 3 training points). A small MLP is trained three times through the same
:class:`~lt_imbalance.module.ImbalancedClassifier` and callbacks a user would configure in YAML:
ERM, SAM-A (the ``SAM`` callback, gamma = 1, at two radii) and class-conditional label smoothing. The figure
shows each model's decision regions with the training points; the paper's claim (section 5.3) is
that SAM-A pulls the boundary away from the minority samples, enlarging the minority region.

    python -m lt_imbalance.demos.margins_2d docs/margins_2d.png
"""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from lt_imbalance.callbacks import SAM
from lt_imbalance.data import DataPart, DatasetParts, FeatureDataset, LongTailedDataModule
from lt_imbalance.losses import CrossEntropy
from lt_imbalance.module import ImbalancedClassifier
from lt_imbalance.plotting import save
from lt_imbalance.training.optimization import LRSchedule

CENTRES = np.array([[-2.5, -1.0], [2.5, -1.0], [0.0, 2.0]])
COLOURS = ("tab:blue", "tab:orange", "tab:red")


def blobs(counts: tuple[int, ...], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(CENTRES[c], 0.8, (n, 2)) for c, n in enumerate(counts)])
    y = np.concatenate([[c] * n for c, n in enumerate(counts)])
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y)


class Blobs2D(LongTailedDataModule):
    """The toy data: ``counts`` training points per class, a balanced test set of ``test_per_class``."""

    sample_unit = "points"

    def __init__(self, counts: tuple[int, ...] = (300, 300, 3), test_per_class: int = 300, batch_size: int = 128, seed: int = 0):
        super().__init__(batch_size=batch_size, imbalance_ratio=1.0, profile="none", split_seed=seed, val_fraction=0.0)
        self.counts, self.test_per_class = counts, test_per_class

    def load_data(self) -> DatasetParts:
        x, y = blobs(self.counts, self.split_seed)
        x_test, y_test = blobs((self.test_per_class,) * len(self.counts), self.split_seed + 1)
        return DatasetParts(["left", "right", "rare"], DataPart(y.numpy(), x), DataPart(y_test.numpy(), x_test))

    def make_dataset(self, part, indices, train):
        x, y = part.samples, torch.from_numpy(part.labels)
        if indices is not None:
            x, y = x[torch.from_numpy(indices)], y[indices]
        return FeatureDataset(x, y)


#: name -> (model arguments, callbacks factory)
VARIANTS = {
    "ERM": ({}, lambda: []),
    "SAM-A (rho 0.1, gamma 1)": ({}, lambda: [SAM(rho=0.1, gamma=1.0)]),
    "SAM-A (rho 0.5, gamma 1)": ({}, lambda: [SAM(rho=0.5, gamma=1.0)]),
    "CC-LS (eps 0 -> 0.3)": ({"loss": partial(CrossEntropy, label_smoothing=0.0, label_smoothing_tail=0.3)}, lambda: []),
}


def train(data: Blobs2D, model_kwargs: dict, callbacks: list, epochs: int, seed: int) -> ImbalancedClassifier:
    pl.seed_everything(seed, verbose=False)
    model = ImbalancedClassifier(
        "mlp", backbone_kwargs={"hidden": (64, 64), "dropout": 0.0}, class_counts=data.class_counts, input_shape=(2,),
        optimizer=partial(torch.optim.SGD, lr=0.05, momentum=0.9, weight_decay=1e-4), lr_schedule=LRSchedule("constant"), **model_kwargs,
    )  # fmt: skip
    model.run_defaults = False  # an in-memory comparison: no run folder, tables or checkpoints
    trainer = pl.Trainer(
        max_epochs=epochs,
        callbacks=callbacks,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        accelerator="cpu",
        devices=1,
    )
    trainer.fit(model, data)
    return model.eval()


def balanced_accuracy(model: ImbalancedClassifier, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        pred = model(x).argmax(1)
    return float(np.mean([(pred[y == c] == c).float().mean().item() for c in y.unique()]))


def margin_demo(path: str | Path, epochs: int = 60, seed: int = 0) -> dict[str, float]:
    """Train the variants, draw their decision regions side by side into ``path``; returns each
    variant's balanced test accuracy."""
    data = Blobs2D(seed=seed)
    xs, ys = np.meshgrid(np.linspace(-5.5, 5.5, 220), np.linspace(-4, 5, 180))
    grid = torch.tensor(np.stack([xs.ravel(), ys.ravel()], 1), dtype=torch.float32)
    x_train, y_train = data.parts.pool.samples, torch.from_numpy(data.parts.pool.labels)
    x_test, y_test = data.parts.test.samples, torch.from_numpy(data.parts.test.labels)
    fig = Figure(figsize=(4.6 * len(VARIANTS), 4.4))
    axes = fig.subplots(1, len(VARIANTS), sharey=True)
    scores = {}
    for ax, (name, (kwargs, callbacks)) in zip(axes, VARIANTS.items()):
        model = train(data, kwargs, callbacks(), epochs, seed)
        with torch.no_grad():
            regions = model(grid).argmax(1).reshape(xs.shape).numpy()
        scores[name] = balanced_accuracy(model, x_test, y_test)
        ax.contourf(xs, ys, regions, levels=[-0.5, 0.5, 1.5, 2.5], cmap=ListedColormap(["#c6dbef", "#fdd0a2", "#fcbba1"]))
        for c, colour in enumerate(COLOURS):
            pts = x_train[y_train == c]
            ax.scatter(
                pts[:, 0],
                pts[:, 1],
                s=40 if c == 2 else 4,
                c=colour,
                edgecolors="k" if c == 2 else "none",
                linewidths=0.8,
                alpha=1 if c == 2 else 0.4,
            )
        rare_area = 100 * float((regions == 2).mean())
        ax.set_title(f"{name}\nbalanced test acc {100 * scores[name]:.1f}%, rare region {rare_area:.1f}% of plot", fontsize=9)
        ax.set_xlabel("x1")
    axes[0].set_ylabel("x2")
    fig.suptitle("Imbalanced 2-D blobs (300 / 300 / 3 training points): decision regions")
    fig.tight_layout()
    save(fig, path, dpi=100)
    return scores


if __name__ == "__main__":
    print(margin_demo(sys.argv[1] if len(sys.argv) > 1 else "margins_2d.png"))
