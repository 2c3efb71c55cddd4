"""lt_imbalance: training neural networks on class-imbalanced data with tuned standard components
(Shwartz-Ziv et al., *Simplifying Neural Network Training Under Class Imbalance*, NeurIPS 2023)."""

from lt_imbalance.module import ImbalancedClassifier

__all__ = ["ImbalancedClassifier"]
__version__ = "0.1.0"
