"""Spread over seeds as pure functions of a (seeds x runs) array: mean, sample std, bootstrap CI.

Rows are seeds (independent repetitions), columns are runs (searcher x space x preset groups, or any
set of quantities measured per seed). A 1-D array is one column.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def _as_seeds_by_runs(values: ArrayLike) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[0] == 0:
        raise ValueError(f"expected a non-empty (seeds x runs) array, got shape {array.shape}")
    return array


def mean(values: ArrayLike) -> np.ndarray:
    """Mean over seeds: [seeds, runs] -> [runs]."""
    return _as_seeds_by_runs(values).mean(axis=0)


def sample_std(values: ArrayLike) -> np.ndarray:
    """Sample standard deviation over seeds (divisor seeds - 1): [seeds, runs] -> [runs]; NaN for one seed."""
    array = _as_seeds_by_runs(values)
    if array.shape[0] < 2:
        return np.full(array.shape[1], np.nan)
    return array.std(axis=0, ddof=1)


def bootstrap_ci(
    values: ArrayLike, confidence: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap confidence interval of the mean over seeds: [seeds, runs] -> ([runs], [runs]).

    Each resample draws ``seeds`` rows with replacement (the same rows for every run, so runs measured on
    the same seeds stay paired) and takes the column means; the interval is the central ``confidence``
    share of those means. ``seed`` makes it reproducible.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    array = _as_seeds_by_runs(values)
    n_seeds = array.shape[0]
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, n_seeds, size=(resamples, n_seeds))  # [resamples, seeds]
    means = array[rows].mean(axis=1)  # [resamples, seeds, runs] -> [resamples, runs]
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail], axis=0)
    return low, high


def bootstrap_difference_ci(
    a: ArrayLike, b: ArrayLike, confidence: float = 0.95, resamples: int = 10000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of mean(a) - mean(b) for two independent samples (the seeds of two
    methods): each resample draws len(a) values of ``a`` and len(b) of ``b`` with replacement."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    x, y = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if x.size == 0 or y.size == 0:
        raise ValueError("both samples need at least one value")
    rng = np.random.default_rng(seed)
    diffs = x[rng.integers(0, x.size, (resamples, x.size))].mean(1) - y[
        rng.integers(0, y.size, (resamples, y.size))
    ].mean(1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(diffs, [tail, 1.0 - tail])
    return float(low), float(high)
