"""Spread over seeds as pure functions of a (seeds x runs) array: mean, sample std, bootstrap CI; the
bootstrap interval of a difference of two means; rank correlation of methods' means, with its interval.

Rows are seeds (independent repetitions), columns are runs (searcher x space x preset groups, or any
set of quantities measured per seed). A 1-D array is one column.
"""

from __future__ import annotations

from collections.abc import Sequence

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


def spearman(x: ArrayLike, y: ArrayLike) -> float:
    """Spearman rank correlation of two equally long samples: the Pearson correlation of their ranks, tied
    values sharing the mean of their ranks. NaN when either sample has a single distinct value."""
    a, b = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    if a.size != b.size or a.size < 2:
        raise ValueError(f"need two samples of equal length >= 2, got {a.size} and {b.size}")
    ra, rb = ranks(a), ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    norm = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / norm) if norm > 0 else float("nan")


def ranks(values: ArrayLike) -> np.ndarray:
    """1-based ranks of a 1-D sample, ties given the mean of the ranks they span."""
    values = np.asarray(values, dtype=float).ravel()
    order = np.argsort(values, kind="stable")
    out = np.empty(values.size)
    out[order] = np.arange(1, values.size + 1)
    for value in np.unique(values):
        tied = values == value
        out[tied] = out[tied].mean()
    return out


def bootstrap_spearman_ci(
    x_samples: Sequence[ArrayLike],
    y_samples: Sequence[ArrayLike],
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the Spearman correlation between the means of methods under two
    settings. ``x_samples[i]`` and ``y_samples[i]`` are method i's values over its seeds in each setting; each
    resample redraws every method's seeds with replacement, separately in each setting, and correlates the
    resampled means. Resamples whose means are all tied on one side (no ranking) are left out; NaN when all are."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    if len(x_samples) != len(y_samples) or len(x_samples) < 2:
        raise ValueError(f"need the same >= 2 methods on both sides, got {len(x_samples)} and {len(y_samples)}")
    rng = np.random.default_rng(seed)

    def resampled_means(samples: Sequence[ArrayLike]) -> np.ndarray:  # -> [resamples, methods]
        columns = []
        for values in samples:
            v = np.asarray(values, dtype=float).ravel()
            if v.size == 0:
                raise ValueError("every method needs at least one value on each side")
            columns.append(v[rng.integers(0, v.size, (resamples, v.size))].mean(axis=1))
        return np.stack(columns, axis=1)

    mx, my = resampled_means(x_samples), resampled_means(y_samples)
    rhos = np.array([spearman(a, b) for a, b in zip(mx, my, strict=True)])
    rhos = rhos[np.isfinite(rhos)]
    if rhos.size == 0:
        return float("nan"), float("nan")
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(rhos, [tail, 1.0 - tail])
    return float(low), float(high)
