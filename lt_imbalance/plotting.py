"""The project's figures, drawn with matplotlib's object API (``matplotlib.figure.Figure``: no
pyplot state, no global backend switch), so importing or plotting never changes the caller's
matplotlib set-up. Each function returns a ``Figure``; :func:`save` writes one to a file."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from matplotlib.figure import Figure


def save(fig: Figure, path: str | Path, dpi: int = 90) -> Path:
    """Write ``fig`` to ``path`` (creating its folder); the format follows the suffix."""
    from lt_imbalance.output_files import make_folder, write_with

    make_folder(Path(path).parent, "the figure's folder")
    return write_with(path, lambda partial: fig.savefig(partial, dpi=dpi), "the figure")


def by_count(class_counts: Sequence[int]) -> list[int]:
    """Class indices from the most to the fewest training samples (ties by index)."""
    return sorted(range(len(class_counts)), key=lambda c: (-class_counts[c], c))


def per_class_figure(
    per_class_acc: Sequence[float],
    class_counts: Sequence[int],
    confusion: torch.Tensor,
    title: str,
    class_names: Sequence[str] | None = None,
) -> Figure:
    """Two panels: accuracy against training count (log scale; the five worst classes named), and the
    confusion matrix (rows sum to 1) with the classes ordered by training count and labelled
    ``name (count)`` (up to 40 classes; beyond, by position)."""
    names = [str(n) for n in class_names] if class_names else [str(c) for c in range(len(class_counts))]
    fig = Figure(figsize=(12, 5))
    ax_acc, ax_cm = fig.subplots(1, 2)
    acc = [100 * a for a in per_class_acc]
    ax_acc.scatter(class_counts, acc, s=18)
    worst = sorted((c for c in range(len(acc)) if acc[c] == acc[c]), key=lambda c: acc[c])[:5]
    for c in worst:
        ax_acc.annotate(names[c], (class_counts[c], acc[c]), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax_acc.set_xscale("log")
    ax_acc.set_xlabel("training samples of the class (log scale)")
    ax_acc.set_ylabel("class accuracy (%)")
    ax_acc.set_ylim(-3, 103)
    ax_acc.grid(alpha=0.3)
    order = by_count(class_counts)
    rows = confusion.double()[order][:, order]
    rows = rows / rows.sum(1, keepdim=True).clamp_min(1)
    im = ax_cm.imshow(rows.numpy(), vmin=0, vmax=1, cmap="Blues")
    if len(order) <= 40:
        labels = [f"{names[c]} ({class_counts[c]})" for c in order]
        ax_cm.set_yticks(range(len(order)), labels, fontsize=7)
        ax_cm.set_xticks(range(len(order)), [names[c] for c in order], rotation=90, fontsize=7)
    ax_cm.set_xlabel("predicted class")
    ax_cm.set_ylabel("true class (training count), most frequent first")
    fig.colorbar(im, ax=ax_cm, fraction=0.046)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def overfitting_figure(class_counts: Sequence[int], gap_acc: torch.Tensor, gap_loss: torch.Tensor, epoch: int) -> Figure:
    """Per class, the train - validation accuracy gap and the validation - train loss gap against training count."""
    fig = Figure(figsize=(10, 4))
    a, b = fig.subplots(1, 2)
    a.scatter(class_counts, 100 * gap_acc.numpy(), s=16)
    a.set_ylabel("train - val accuracy (points)")
    b.scatter(class_counts, gap_loss.numpy(), s=16, color="tab:red")
    b.set_ylabel("val - train cross-entropy")
    for ax in (a, b):
        ax.set_xscale("log")
        ax.set_xlabel("training images of the class (log scale)")
        ax.axhline(0, color="grey", lw=0.8)
        ax.grid(alpha=0.3)
    fig.suptitle(f"overfitting gap per class, epoch {epoch}")
    fig.tight_layout()
    return fig


def margins_figure(class_counts: Sequence[int], per_split: Mapping[str, Sequence[torch.Tensor]]) -> Figure:
    """Box plots of the per-class logit margins of each split, classes ordered by training count."""
    order = sorted(range(len(class_counts)), key=lambda c: -class_counts[c])
    fig = Figure(figsize=(6 * len(per_split), 4))
    axes = fig.subplots(1, len(per_split), squeeze=False)
    for ax, (split, per) in zip(axes[0], per_split.items()):
        ax.boxplot([per[c].numpy() for c in order], showfliers=False)
        ax.set_xticks(range(1, len(order) + 1), [str(class_counts[c]) for c in order], rotation=90, fontsize=7)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xlabel("classes by training-image count")
        ax.set_ylabel("logit margin z_y - max_{k != y} z_k")
        ax.set_title(split)
    fig.tight_layout()
    return fig
