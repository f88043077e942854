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


def _t2_sf(t):
    """P(T > t) for Student's t with 2 degrees of freedom, in closed form: (1 - t / sqrt(t² + 2)) / 2."""
    return (1 - t / math.sqrt(t * t + 2)) / 2


def _t1_sf(t):
    """P(T > t) for Student's t with 1 degree of freedom (Cauchy): 1/2 - atan(t) / π."""
    return 0.5 - math.atan(t) / math.pi


def test_welch_uses_welchs_unequal_variances_not_students_pooled_test():
    # a: 2 seeds, variance 4/3; b: 3 seeds, variance 1. Var of the means: 2/3 + 1/3 = 1, so t = 4 - 1 = 3,
    # and Welch-Satterthwaite df = 1 / ((2/3)² / 1 + (1/3)² / 2) = 2 exactly. Student's pooled test would give
    # t = 3 / sqrt(10/9 * 5/6) ≈ 3.12 on 3 df: a different p.
    d = math.sqrt(2 / 3)
    test = stats.welch([4 - d, 4 + d], [0.0, 1.0, 2.0])
    assert test["diff"] == pytest.approx(3.0)
    assert test["p_greater"] == pytest.approx(_t2_sf(3.0), rel=1e-9)  # 0.04773...
    assert test["p_less"] == pytest.approx(1 - _t2_sf(3.0), rel=1e-9)


def test_welch_runs_the_t_test_when_only_one_side_has_no_spread():
    # b constant, a = [0, 2] (population std exactly 1): t = (1 - 5) / 1 = -4 on 1 df, not the order rule
    # (which would give p_less 0 because every a is below every b).
    test = stats.welch([0.0, 2.0], [5.0, 5.0])
    assert test["p_less"] == pytest.approx(_t1_sf(4.0), rel=1e-9) and test["p_less"] > 0.05
    assert test["p_greater"] == pytest.approx(1 - _t1_sf(4.0), rel=1e-9)
    test = stats.welch([5.0, 5.0], [0.0, 2.0])  # the mirror case: a constant
    assert test["p_greater"] == pytest.approx(_t1_sf(4.0), rel=1e-9) and test["p_greater"] > 0.05
    assert test["p_less"] == pytest.approx(1 - _t1_sf(4.0), rel=1e-9)


@pytest.mark.parametrize("a, b, expected", [
    # no spread on either side: the order decides, strictly (equal values decide nothing)
    ([1.0, 1.0], [0.0, 0.0], {"diff": 1.0, "p_greater": 0.0, "p_less": 1.0}),
    ([0.0, 0.0], [1.0, 1.0], {"diff": -1.0, "p_greater": 1.0, "p_less": 0.0}),
    ([1.0, 1.0], [1.0, 1.0], {"diff": 0.0, "p_greater": 1.0, "p_less": 1.0}),
    # a diverged seed (±inf): every value of one side must beat every value of the other
    ([1.0, math.inf], [0.0, 0.5], {"diff": math.inf, "p_greater": 0.0, "p_less": 1.0}),
    ([1.0, math.inf], [0.0, 2.0], {"diff": math.inf, "p_greater": 1.0, "p_less": 1.0}),  # ranges overlap
    ([0.0, 0.5], [1.0, math.inf], {"diff": -math.inf, "p_greater": 1.0, "p_less": 0.0}),
    ([0.0, 2.0], [1.0, math.inf], {"diff": -math.inf, "p_greater": 1.0, "p_less": 1.0}),
    ([1.0, math.inf], [1.0, 1.0], {"diff": math.inf, "p_greater": 1.0, "p_less": 1.0}),  # a tie at the edge
    ([1.0, 1.0], [1.0, math.inf], {"diff": -math.inf, "p_greater": 1.0, "p_less": 1.0}),
    # fewer than two seeds a side: no test (p 1 both ways); the difference of the means is still reported
    ([0.5], [0.1, 0.2], {"diff": 0.35, "p_greater": 1.0, "p_less": 1.0}),
    ([0.1, 0.2], [0.5], {"diff": -0.35, "p_greater": 1.0, "p_less": 1.0}),
])
def test_welch_degenerate_inputs_give_the_documented_result_exactly(a, b, expected):
    test = stats.welch(a, b)
    assert set(test) == {"diff", "p_greater", "p_less"}
    assert test["diff"] == pytest.approx(expected["diff"])
    assert (test["p_greater"], test["p_less"]) == (expected["p_greater"], expected["p_less"])


@pytest.mark.parametrize("a, b", [([], [0.1, 0.2]), ([0.1, 0.2], [])])
def test_welch_with_an_empty_side_has_no_difference(a, b):
    test = stats.welch(a, b)
    assert math.isnan(test["diff"]) and (test["p_greater"], test["p_less"]) == (1.0, 1.0)


def test_welch_interval_is_the_hand_computed_welch_satterthwaite_interval():
    a, b = np.array([0.71, 0.74, 0.69, 0.75]), np.array([0.60, 0.66, 0.58])
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))  # Welch–Satterthwaite
    half = scipy_stats.t.ppf(0.975, df) * math.sqrt(va + vb)
    low, high = stats.welch_interval(a, b, 0.95)
    assert low == pytest.approx(a.mean() - b.mean() - half) and high == pytest.approx(a.mean() - b.mean() + half)
    assert all(math.isnan(x) for x in stats.welch_interval([1.0], [2.0, 3.0], 0.95))  # one seed: no interval
    assert all(math.isnan(x) for x in stats.welch_interval([1.0, math.inf], [2.0, 3.0], 0.95))  # a diverged seed
# ---------------------------------------------------------------- the divergence rule (issue 27.2)
def test_divergence_rule_non_finite_or_a_million_times_the_start():
    from optimbench.metrics import DIVERGENCE_FACTOR, diverged

    assert DIVERGENCE_FACTOR == 1e6
    for value in (float("nan"), float("inf"), -float("inf")):
        assert diverged(value, 2.3)
    assert diverged(4.6e35, 2.3) and diverged(2.3e6 + 1, 2.3) and not diverged(2.3e6, 2.3)
    assert diverged(-1e7, 5.0) and not diverged(-4e6, 5.0)  # |value|
    assert diverged(1e6 + 1, 0.0) and not diverged(1e6, 1e-9)  # the floor of 1: a start at 0
