"""Comparing two trials on the same validation images: the difference of their values and the
standard error of that *paired* difference.

Both trials are scored on one validation split, so their errors are correlated image by image, and
the noise of their difference is that of the per-image differences d_i = right_a(i) - right_b(i),
not sqrt(se_a² + se_b²) as if they had been scored on different images. For balanced accuracy,
the mean over the C classes of the per-class recalls,

    diff = (1/C) sum_c mean_{i in c} d_i,    SE = (1/C) sqrt(sum_c v_c / n_c),

with v_c the variance of d over the n_c images of class c, estimated with m = 2 pseudo-images at the
split's overall disagreement rate r = mean_i d_i²:

    v_c = (sum_{i in c} d_i² + m r) / (n_c + m) - (sum_{i in c} d_i / (n_c + m))².

A class with one or two images then weighs by what one image can move (the plain sample variance is
0 for a class with one image, or whose images agree by chance, and the stated error covered the true
difference only 76-80% of the time where it claimed 95%, simulated on 10 classes of 1 to 20
validation images; with the pseudo-images 91-96%: ``tests/tuning/test_selection_stats.py``). For
a large class v_c is the sample variance. For plain accuracy diff = mean d_i and SE = s / sqrt(n).
"""

from __future__ import annotations

import numpy as np

#: the monitors whose paired difference is computed (the others: None)
PAIRED_METRICS = ("balanced_acc", "acc")
#: pseudo-images per class at the overall disagreement rate in the per-class variance (module docstring)
PSEUDO_IMAGES = 2.0


def paired_difference(targets: np.ndarray, predicted_a: np.ndarray, predicted_b: np.ndarray, metric: str) -> tuple[float, float] | None:
    """``(value_a - value_b, its standard error)`` of ``metric`` (module docstring), or None for a
    metric without a paired formula here.

    Examples:
        >>> y = np.array([0, 0, 1, 1])
        >>> paired_difference(y, np.array([0, 0, 1, 0]), np.array([0, 1, 1, 0]), "acc")
        (0.25, 0.25)
    """
    if metric not in PAIRED_METRICS:
        return None
    d = (predicted_a == targets).astype(np.float64) - (predicted_b == targets).astype(np.float64)
    if metric == "acc":
        return float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else 0.0
    classes = np.unique(targets)
    means = [d[targets == c].mean() for c in classes]
    rate, m = float(np.mean(d**2)), PSEUDO_IMAGES
    variances = []
    for c in classes:
        dc = d[targets == c]
        v = (np.sum(dc**2) + m * rate) / (len(dc) + m) - (np.sum(dc) / (len(dc) + m)) ** 2
        variances.append(v / len(dc))
    return float(np.mean(means)), float(np.sqrt(np.sum(variances)) / len(classes))


def expected_maximum(k: int) -> float:
    """E[max of k independent standard normal values]: how many standard errors the best of k equally
    good trials is expected to lie above their common value (1.54 for k = 10, 2.51 for k = 100),
    by numerical integration of x k phi(x) Phi(x)^(k - 1).

    Examples:
        >>> round(expected_maximum(2), 4)  # 1 / sqrt(pi)
        0.5642
    """
    from math import erf, sqrt

    x = np.linspace(-10.0, 10.0, 20_001)
    phi = np.exp(-0.5 * x**2) / np.sqrt(2 * np.pi)
    cdf = 0.5 * (1 + np.array([erf(v / sqrt(2)) for v in x]))
    return float((x * k * phi * cdf ** (k - 1)).sum() * (x[1] - x[0]))
