"""The study's statistics against scipy and hand computations: the interval of a mean across seeds,
clipped to a metric's range, and Welch's test with its degenerate cases."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from optimbench import stats

T_975_2 = 4.302652729911275  # Student t quantile, 97.5%, 2 degrees of freedom
T_975_1 = 12.706204736174707  # ... 1 degree of freedom


def test_mean_interval_is_scipys_t_interval_clipped_to_the_range():
    values = np.array([0.1, 0.9])  # two seeds far apart: the raw t-interval is [-4.58, 5.58]
    mean, std = values.mean(), values.std(ddof=1)
    raw = scipy_stats.t.interval(0.95, 1, loc=mean, scale=std / math.sqrt(2))
    assert raw[0] == pytest.approx(0.5 - T_975_1 * 0.4)  # sem = std / √2 = 0.4
    low, high = stats.mean_interval(2, mean, std, 0.95, (0.0, 1.0))
    assert (float(low), float(high)) == (0.0, 1.0)
    low, high = stats.mean_interval(2, mean, std, 0.95)  # unbounded: the raw interval
    assert (float(low), float(high)) == (pytest.approx(raw[0]), pytest.approx(raw[1]))
    low, high = stats.mean_interval(3, 0.8, 0.1, 0.95, (0.0, 1.0))
    assert (float(low), float(high)) == (pytest.approx(0.8 - T_975_2 * 0.1 / math.sqrt(3)), 1.0)


def test_welch_matches_scipy_and_handles_degenerate_seeds():
    a, b = [0.8, 0.9, 0.7], [0.5, 0.6, 0.4]
    test = stats.welch(a, b)
    p_greater = scipy_stats.ttest_ind(a, b, equal_var=False, alternative="greater").pvalue
    assert test["p_greater"] == pytest.approx(p_greater)
    assert test["diff"] == pytest.approx(0.3) and test["p_less"] > 0.9
    assert stats.welch([1.0, 1.0], [0.0, 0.0])["p_greater"] == 0.0  # no spread: the order decides
    assert stats.welch([1.0, math.inf], [0.0, 0.5])["p_greater"] == 0.0
    assert stats.welch([0.5], [0.1, 0.2])["p_greater"] == 1.0  # one seed: cannot tell
