"""The interval of a mean across seeds, and Welch's test of two means.

Every interval of a mean in every table (and so of every figure and sentence of the report) is
`mean_interval`. Every "better / worse / inconclusive" between two optimizers is optimbench.compare's one
procedure (paired t-test on the seeds both completed, Holm within a family, failed runs named); `welch` here
remains for the article's "similar accuracy" claim, an equivalence test (two one-sided tests, optimbench.claims).
Both wrap scipy.stats (Student-t quantiles, `ttest_ind(equal_var=False)`); what is ours is only the policy for
degenerate inputs (fewer than two seeds, no spread, a diverged seed scored ±∞), stated in each docstring.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

INF = math.inf


def mean_interval(n, mean, std, confidence: float, bounds=(-INF, INF)) -> tuple[np.ndarray, np.ndarray]:
    """Confidence interval of a mean across seeds: Student-t (scipy.stats.t.interval, n - 1 degrees of
    freedom) around the sample mean, clipped to the metric's range `bounds`.

    Args: n, mean, std: arrays (or scalars) of the number of values, their mean and sample std (ddof 1).
    Returns: (low, high) arrays; NaN where n < 2 (no spread to estimate), (mean, mean) where the mean is
    infinite (a diverged seed scored +inf).
    """
    n, mean, std = (np.asarray(a, dtype=float) for a in (n, mean, std))
    with np.errstate(invalid="ignore", divide="ignore"):
        sem = std / np.sqrt(n)
        low, high = stats.t.interval(confidence, np.maximum(n - 1, 1), loc=np.nan_to_num(mean), scale=sem)
    enough = n >= 2
    low, high = np.where(enough, low, np.nan), np.where(enough, high, np.nan)
    infinite = np.isinf(mean)
    low, high = np.where(infinite, mean, low), np.where(infinite, mean, high)
    return np.clip(low, *bounds), np.clip(high, *bounds)


def summarize_values(values: pd.Series, confidence: float, bounds=(-INF, INF)) -> dict:
    """n, mean, std and the interval (mean_interval) of one set of values (NaN values are not counted)."""
    values = values.dropna().astype(float)
    n = len(values)
    mean = values.mean() if n else np.nan
    std = values.std() if n > 1 and np.isfinite(values).all() else np.nan
    low, high = mean_interval(n, mean, std, confidence, bounds)
    return {"n": n, "mean": mean, "std": std, "ci_low": float(low), "ci_high": float(high)}


def welch(a, b) -> dict:
    """Welch's t-test of mean(a) - mean(b) (scipy.stats.ttest_ind, equal_var=False).

    Returns diff (mean a - mean b) and the one-sided p-values p_greater (H1: a > b) and p_less (H1: a < b).
    Degenerate cases: with infinite values or no spread, the sign of the difference decides (p 0 or 1)
    when every value of one side beats every value of the other, else p = 1; fewer than 2 values a side: 1.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or len(b) < 2:
        return {"diff": np.mean(a) - np.mean(b) if len(a) and len(b) else np.nan, "p_greater": 1.0, "p_less": 1.0}
    with np.errstate(invalid="ignore"):
        diff = np.mean(a) - np.mean(b)
    if not (np.isfinite(a).all() and np.isfinite(b).all()) or (np.std(a) == 0 and np.std(b) == 0):
        return {"diff": diff, "p_greater": 0.0 if a.min() > b.max() else 1.0,
                "p_less": 0.0 if a.max() < b.min() else 1.0}
    greater = float(stats.ttest_ind(a, b, equal_var=False, alternative="greater").pvalue)
    return {"diff": diff, "p_greater": greater, "p_less": 1.0 - greater}  # one t statistic: the two tails


def welch_interval(a, b, confidence: float) -> tuple[float, float]:
    """Confidence interval of mean(a) - mean(b) without assuming equal variances: Welch's t interval with
    the Welch–Satterthwaite degrees of freedom (scipy.stats.ttest_ind(equal_var=False).confidence_interval;
    Welch 1947, Biometrika 34).

    Args: a, b: the per-seed values of two optimizers (1-D); confidence: the two-sided level (0.95).
    Returns: (low, high); (NaN, NaN) when a side has fewer than 2 values, a value is infinite (a diverged
    seed scored ∞) or neither side has spread (no interval to estimate; `welch` then decides by the values).
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if (len(a) < 2 or len(b) < 2 or not (np.isfinite(a).all() and np.isfinite(b).all())
            or (np.std(a) == 0 and np.std(b) == 0)):
        return math.nan, math.nan
    interval = stats.ttest_ind(a, b, equal_var=False).confidence_interval(confidence)
    return float(interval.low), float(interval.high)
