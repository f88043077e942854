"""Your optimizer against the field (`report.focus`, `report.baselines`): per problem, each focus optimizer
against every baseline, by the final primary metric, as the study's one comparison procedure decides it
(optimbench.compare: paired t-test on the seeds both completed, two-sided, Holm within the family "focus
× baselines × problems", a failed run named and counted only against its own optimizer).

The field: report.focus is an optimizer or a list of them (variants of one's own optimizer, e.g.
`[AdaBelief, AdaBelief-eps1e-8]`); report.baselines (default: every other optimizer of the study) are what it
is compared with. A variant of the focus is never a baseline, so never "the best baseline".

`focus_table(seeds, problems, focus, confidence, comparisons)` is the aggregate step's `focus` table (and, on
the tuned runs, `tuned_focus`: tuned against tuned); optimbench.report puts it into words.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from optimbench.compare import BETTER, INCONCLUSIVE, WORSE, field, lookup, study_comparisons, with_failed
from optimbench.runs import StudyProblem

__all__ = ["BETTER", "WORSE", "INCONCLUSIVE", "FOCUS_COLUMNS", "focus_table"]
FOCUS_COLUMNS = ["problem", "metric", "higher_is_better", "focus", "baseline", "best_baseline", "focus_mean",
                 "baseline_mean", "difference", "difference_ci_low", "difference_ci_high", "p_value", "p_adjusted",
                 "verdict", "test", "pairs", "wins", "losses", "focus_failed", "baseline_failed", "seeds_needed",
                 "family_size", "focus_seeds", "baseline_seeds", "confidence"]


def _completed_mean(group: pd.DataFrame, optimizer: str) -> float:
    rows = group[(group["optimizer"] == optimizer) & ~group["failed"].astype(bool)]
    return float(rows["final"].mean()) if len(rows) else np.nan


def _problem_rows(problem: StudyProblem, group: pd.DataFrame, mine: str, theirs: list[str],
                  comparisons: pd.DataFrame, confidence: float) -> list[dict]:
    metric = problem.primary
    sign = 1.0 if metric.higher_is_better else -1.0
    failures = group.groupby("optimizer")["failed"].sum()
    means = {o: _completed_mean(group, o) for o in theirs}
    # the best baseline: fewer failed runs, then the better mean of its completed seeds (the summary's order)
    best = min(theirs, key=lambda o: (failures[o], -sign * np.nan_to_num(means[o], nan=-np.inf), o)) if theirs else None
    rows = []
    for baseline in theirs:
        c = lookup(comparisons, problem.name, mine, baseline)
        rows.append({"problem": problem.name, "metric": metric.name, "higher_is_better": metric.higher_is_better,
                     "focus": mine, "baseline": baseline, "best_baseline": baseline == best,
                     "focus_mean": _completed_mean(group, mine), "baseline_mean": means[baseline],
                     "difference": c["centre"], "difference_ci_low": c["low"], "difference_ci_high": c["high"],
                     "p_value": c["p"], "p_adjusted": c["p_adjusted"], "verdict": c["verdict"], "test": c["test"],
                     "pairs": c["n"], "wins": c["wins"], "losses": c["losses"], "focus_failed": c["failed_a"],
                     "baseline_failed": c["failed_b"], "seeds_needed": c["seeds_needed"],
                     "family_size": c["family_size"], "focus_seeds": int((group["optimizer"] == mine).sum()),
                     "baseline_seeds": int((group["optimizer"] == baseline).sum()), "confidence": confidence})
    return sorted(rows, key=lambda r: (not r["best_baseline"], failures[r["baseline"]],
                                       -sign * np.nan_to_num(r["baseline_mean"], nan=-np.inf), r["baseline"]))


def focus_table(seeds: pd.DataFrame, problems: dict[str, StudyProblem], focus, confidence: float = 0.95,
                comparisons: pd.DataFrame | None = None, baselines=None) -> pd.DataFrame:
    """Per problem of `problems` (Plan.problems, in order) and focus optimizer (`focus`: a name, a list, or None),
    one row per baseline (`baselines`, default every non-focus optimizer with runs there), the best baseline
    first (fewer failed runs, then the best mean of its completed seeds), then the others in that order.

    Columns FOCUS_COLUMNS: focus_mean / baseline_mean over completed seeds; difference = the comparison's centre
    (mean focus − baseline over the seeds both completed, metric's unit) with its interval
    (difference_ci_low/high: the family's simultaneous level; NaN without one); p_value, p_adjusted (Holm in
    the focus family of family_size), verdict, test, pairs, wins / losses (seeds), the failed seeds of each
    side, seeds_needed (per optimizer for 80 % power, when inconclusive). `seeds`: seed_summary rows (problem,
    optimizer, seed, final, failed); `comparisons`: the study's (optimbench.compare.study_comparisons), made
    here with this focus and these baselines when None. Empty (with those columns) without a focus or runs."""
    higher, seeds = {name: p.primary.higher_is_better for name, p in problems.items()}, with_failed(seeds)
    if comparisons is None and len(seeds):
        comparisons = study_comparisons(seeds, higher, confidence, focus, baselines)
    rows = []
    for name, problem in problems.items() if len(seeds) else ():
        group = seeds[seeds["problem"] == name]
        mine, theirs = field(sorted(group["optimizer"].unique()), focus, baselines)
        for optimizer in mine:
            rows += _problem_rows(problem, group, optimizer, theirs, comparisons, confidence)
    return pd.DataFrame(rows, columns=FOCUS_COLUMNS)
