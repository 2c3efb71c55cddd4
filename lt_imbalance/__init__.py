"""lt_imbalance: training neural networks on class-imbalanced data with tuned standard components
(Shwartz-Ziv et al., *Simplifying Neural Network Training Under Class Imbalance*, NeurIPS 2023).

``import lt_imbalance`` is light: the Lightning module is imported on first use of
``lt_imbalance.ImbalancedClassifier``, so the pure pieces (``lt_imbalance.losses``,
``lt_imbalance.models``, ``lt_imbalance.data.splits``, ...) import without Lightning.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ImbalancedClassifier"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "ImbalancedClassifier":
        from lt_imbalance.module import ImbalancedClassifier

        return ImbalancedClassifier
    raise AttributeError(f"module 'lt_imbalance' has no attribute {name!r}")
