"""Mean, sample std, bootstrap CI and rank correlation, against hand-worked values."""

import math

import numpy as np
import pytest

from nasbench.metrics.stats import bootstrap_ci, bootstrap_spearman_ci, mean, ranks, sample_std, spearman

# 3 seeds x 2 runs. Column 0: 1, 3, 5 -> mean 3, variance (4 + 0 + 4) / 2 = 4, std 2.
# Column 1: 2, 4, 9 -> mean 5, variance (9 + 1 + 16) / 2 = 13.
HAND = [[1.0, 2.0], [3.0, 4.0], [5.0, 9.0]]


def test_mean_and_sample_std_by_hand():
    assert mean(HAND).tolist() == [3.0, 5.0]
    assert sample_std(HAND) == pytest.approx([2.0, math.sqrt(13.0)])


def test_one_dimensional_input_is_one_run_and_one_seed_has_no_spread():
    assert mean([2.0, 4.0]).tolist() == [3.0]
    assert sample_std([2.0, 4.0]) == pytest.approx([math.sqrt(2.0)])
    assert np.isnan(sample_std([[1.0, 2.0]])).all()


def test_bootstrap_ci_contains_the_mean_and_is_reproducible():
    low, high = bootstrap_ci(HAND, seed=3)
    assert (low <= mean(HAND)).all() and (mean(HAND) <= high).all()
    # a resampled mean of column 0 lies between its smallest and largest value
    assert 1.0 <= low[0] < high[0] <= 5.0
    again = bootstrap_ci(HAND, seed=3)
    assert low.tolist() == again[0].tolist() and high.tolist() == again[1].tolist()
    spread = np.random.default_rng(1).normal(size=20)  # with 3 seeds the bounds are mostly sample extremes
    assert bootstrap_ci(spread, seed=4)[0].tolist() != bootstrap_ci(spread, seed=5)[0].tolist()


def test_bootstrap_ci_shrinks_with_more_seeds_like_the_normal_approximation():
    rng = np.random.default_rng(0)
    widths = []
    for n in (10, 1000):
        values = rng.normal(10.0, 2.0, size=n)
        low, high = bootstrap_ci(values, confidence=0.95, seed=0)
        widths.append(float(high[0] - low[0]))
        # independent check: mean +/- 1.96 standard errors
        assert widths[-1] == pytest.approx(2 * 1.96 * values.std(ddof=1) / math.sqrt(n), rel=0.25)
    assert widths[1] < widths[0] / 5


def test_identical_seeds_give_a_zero_width_interval():
    low, high = bootstrap_ci([[7.0], [7.0], [7.0]])
    assert low.tolist() == high.tolist() == [7.0]


@pytest.mark.parametrize("bad", [[], [[[1.0]]]])
def test_malformed_arrays_are_refused(bad):
    with pytest.raises(ValueError, match="seeds x runs"):
        mean(bad)


def test_confidence_outside_zero_one_is_refused():
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci(HAND, confidence=95)


def test_spearman_by_hand_with_and_without_ties():
    # ranks 1 2 3 4 against 1 3 2 4: d^2 = 0 + 1 + 1 + 0 = 2, rho = 1 - 6 * 2 / (4 * 15) = 0.8
    assert spearman([10.0, 20.0, 30.0, 40.0], [1.0, 3.0, 2.0, 4.0]) == pytest.approx(0.8)
    assert spearman([1.0, 2.0, 3.0], [9.0, 5.0, 1.0]) == pytest.approx(-1.0)
    # ties share their mean rank: 5, 7, 7, 9 -> 1, 2.5, 2.5, 4; against 1, 2, 3, 4 the centred ranks are
    # (-1.5, 0, 0, 1.5) and (-1.5, -0.5, 0.5, 1.5): 4.5 / sqrt(4.5 * 5) = 0.9487
    assert ranks([5.0, 7.0, 7.0, 9.0]).tolist() == [1.0, 2.5, 2.5, 4.0]
    assert spearman([5.0, 7.0, 7.0, 9.0], [1.0, 2.0, 3.0, 4.0]) == pytest.approx(4.5 / math.sqrt(22.5))
    assert math.isnan(spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))  # no ranking on one side
    with pytest.raises(ValueError, match="equal length"):
        spearman([1.0, 2.0], [1.0, 2.0, 3.0])


def test_bootstrap_spearman_interval_of_separated_and_of_overlapping_methods():
    # seeds so far apart that every resample keeps each side's order: A ranks 1 2 3, B the reverse
    a = [[90.0, 91.0, 92.0], [80.0, 81.0, 82.0], [70.0, 71.0, 72.0]]
    b = [[70.0, 71.0, 72.0], [80.0, 81.0, 82.0], [90.0, 91.0, 92.0]]
    assert bootstrap_spearman_ci(a, b) == (-1.0, -1.0)
    assert bootstrap_spearman_ci(a, a) == (1.0, 1.0)
    # one seed a method: nothing to resample, the interval is the point
    low, high = bootstrap_spearman_ci([[1.0], [2.0], [3.0]], [[1.0], [3.0], [2.0]])
    assert low == high == pytest.approx(0.5)
    # overlapping seeds: resamples reorder the methods, so the interval is wide
    c = [[90.0, 70.0, 85.0], [80.0, 88.0, 75.0], [70.0, 95.0, 80.0]]
    low, high = bootstrap_spearman_ci(c, b, seed=1)
    assert low < -0.4 and high > 0.4
    with pytest.raises(ValueError, match="same >= 2 methods"):
        bootstrap_spearman_ci(a, b[:2])
