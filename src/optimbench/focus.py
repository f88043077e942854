"""Your optimizer against the field (`report.focus`): per problem, the focus optimizer against every other
optimizer of the study (its baselines) and against the best of them, by the final primary metric.

Each comparison gives the difference of the means across seeds (focus − baseline, in the metric's unit), its
Welch interval at the study's confidence (optimbench.stats.welch_interval) and a verdict in the metric's
direction: **better** / **worse** when the two-sided Welch test (optimbench.stats.welch) rejects equal means
at level 1 − confidence, so exactly when the interval leaves out 0, else **inconclusive**. A diverged seed
scores the metric's worst value (seed_summary's `final`), so a diverging optimizer loses; with an infinite
value there is no interval and the values decide (stats.welch's degenerate policy).

`focus_table(seeds, problems, focus, confidence)` is the aggregate step's `focus` table (and, on the tuned
runs, `tuned_focus`: tuned against tuned); optimbench.report puts it into words.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from optimbench.runs import StudyProblem
from optimbench.stats import welch, welch_interval

BETTER, WORSE, INCONCLUSIVE = "better", "worse", "inconclusive"
FOCUS_COLUMNS = ["problem", "metric", "higher_is_better", "focus", "baseline", "best_baseline", "focus_mean",
                 "baseline_mean", "difference", "difference_ci_low", "difference_ci_high", "p_value", "verdict",
                 "focus_seeds", "baseline_seeds", "confidence"]


def verdict(a, b, higher_is_better: bool, confidence: float) -> tuple[str, float]:
    """(better / worse / inconclusive, two-sided p) of values `a` against `b` in the metric's direction:
    the two-sided Welch test (2 × the smaller one-sided p of stats.welch, at most 1) at level 1 − confidence."""
    test = welch(a, b)
    p_value = min(1.0, 2 * min(test["p_greater"], test["p_less"]))
    if p_value >= 1 - confidence:
        return INCONCLUSIVE, p_value
    a_higher = test["p_greater"] < test["p_less"]
    return (BETTER if a_higher == higher_is_better else WORSE), p_value


def _problem_rows(problem: StudyProblem, group: pd.DataFrame, focus: str, confidence: float) -> list[dict]:
    metric = problem.primary
    values = {o: g["final"].to_numpy(float) for o, g in group.groupby("optimizer", sort=True)}
    mine = values.pop(focus)
    sign = 1.0 if metric.higher_is_better else -1.0
    best = min(values, key=lambda o: (-sign * np.mean(values[o]), o)) if values else None
    rows = []
    for baseline, theirs in values.items():
        low, high = welch_interval(mine, theirs, confidence)
        word, p_value = verdict(mine, theirs, metric.higher_is_better, confidence)
        with np.errstate(invalid="ignore"):
            difference = float(np.mean(mine) - np.mean(theirs))
        rows.append({"problem": problem.name, "metric": metric.name, "higher_is_better": metric.higher_is_better,
                     "focus": focus, "baseline": baseline, "best_baseline": baseline == best,
                     "focus_mean": float(np.mean(mine)), "baseline_mean": float(np.mean(theirs)),
                     "difference": difference, "difference_ci_low": low, "difference_ci_high": high,
                     "p_value": p_value, "verdict": word, "focus_seeds": len(mine), "baseline_seeds": len(theirs),
                     "confidence": confidence})
    return sorted(rows, key=lambda r: (not r["best_baseline"], -sign * r["baseline_mean"], r["baseline"]))


def focus_table(seeds: pd.DataFrame, problems: dict[str, StudyProblem], focus: str | None,
                confidence: float = 0.95) -> pd.DataFrame:
    """Per problem of `problems` (Plan.problems, in order) where `focus` has runs in `seeds` (seed_summary
    rows: problem, optimizer, seed, final), one row per baseline (every other optimizer there), the best
    baseline (best mean final in the metric's direction) first, then the others best first. Columns
    FOCUS_COLUMNS: the means, difference = focus_mean − baseline_mean (the metric's unit), its Welch interval
    (difference_ci_low/high; NaN without one), the two-sided p_value and the verdict (module docstring).
    Empty (with those columns) when `focus` is None or has no runs."""
    rows = []
    for name, problem in problems.items() if focus is not None and len(seeds) else ():
        group = seeds[seeds["problem"] == name]
        if (group["optimizer"] == focus).any():
            rows += _problem_rows(problem, group, focus, confidence)
    return pd.DataFrame(rows, columns=FOCUS_COLUMNS)
