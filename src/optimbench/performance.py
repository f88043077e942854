"""One verdict across problems (SPEC §2.9): Dolan–Moré performance profiles and per-problem ranks.

Performance profile (Dolan & Moré 2002, "Benchmarking optimization software with performance profiles",
Math. Programming 91, §2; AlgoPerf, Dahl et al. 2023, §4.5, scores training algorithms the same way):
for problem p and optimizer s with cost t_{p,s}, the performance ratio is r_{p,s} = t_{p,s} / min_s t_{p,s},
and the profile of s is ρ_s(τ) = |{p : r_{p,s} ≤ τ}| / n_problems, a step function of τ ≥ 1. A failure
(a diverged run, a missed target) has r = ∞: it counts against s at every τ.

Two costs (`measure`):
- "time": time (seconds or epochs) to the problem's target; a seed that diverged or never reached the
  target costs ∞. Per problem × optimizer the cost is the median over seeds (∞ when at least half fail).
- "metric": the final primary metric, direction-aware: r = value / best for lower-is-better metrics
  (perplexity, negative ELBO, loss), r = best / value for higher-is-better ones (accuracy); a diverged
  seed scores the metric's worst value; per problem × optimizer the median over seeds.

Input everywhere: a per-seed table with columns problem, optimizer, seed, value (the final primary
metric), time_to_target (NaN if the target was not reached) and diverged (bool); `seed_outcome` makes
one row from a run's epochs (optimbench.aggregate's per-seed table is built on it), `performance_seeds`
the table from seed_summary. `primary` maps each problem to its primary optimbench.metrics.Metric.
`performance_tables` computes every table of this module for the study, one set per measure.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from optimbench.metrics import Metric
from optimbench.runs import GROUP_KEYS, StudyProblem
from optimbench.stats import summarize_values, welch_greater

INF = math.inf
# measure -> (the seed_summary column that is a seed's time to target, the measure of performance_ratios)
PERFORMANCE_MEASURES = {"time": ("seconds_to_target", "time"), "epochs": ("epochs_to_target", "time"),
                        "metric": ("seconds_to_target", "metric")}


def seed_outcome(epochs: pd.DataFrame, metric: Metric, target: float, time_column: str = "epoch_seconds") -> dict:
    """One run's row of the per-seed table from its epochs (columns epoch, metric.name, time_column,
    diverged): value (the last epoch's metric; the metric's worst if the run diverged), time_to_target
    (time_column summed through the first epoch that meets the target in the metric's direction; NaN if
    none or if the run diverged: AlgoPerf scores a missed target as infinite time), epochs_to_target (that
    epoch's number, NaN likewise), diverged."""
    epochs = epochs.sort_values("epoch")
    diverged = bool(epochs["diverged"].astype(bool).any())
    reached = [] if diverged else [i for i, v in enumerate(epochs[metric.name]) if metric.reaches(v, target)]
    first = reached[0] if reached else None
    return {"value": metric.worst if diverged else float(epochs[metric.name].iloc[-1]),
            "time_to_target": float(epochs[time_column].iloc[: first + 1].sum()) if first is not None else np.nan,
            "epochs_to_target": int(epochs["epoch"].iloc[first]) if first is not None else np.nan,
            "diverged": diverged}


# ---------------------------------------------------------------- costs and ratios
def _seed_costs(seeds: pd.DataFrame, primary: dict, measure: str) -> pd.Series:
    if measure == "time":
        failed = seeds["diverged"].astype(bool) | seeds["time_to_target"].isna()
        return seeds["time_to_target"].astype(float).where(~failed, INF)
    if measure == "metric":
        worst = seeds["problem"].map(lambda p: primary[p].worst)
        return seeds["value"].astype(float).where(~seeds["diverged"].astype(bool), worst)
    raise ValueError(f"measure must be 'time' or 'metric', not {measure!r}")


def performance_ratios(seeds: pd.DataFrame, primary: dict, measure: str = "time") -> pd.DataFrame:
    """Per problem × optimizer: cost (median over seeds, module docstring), ratio r_{p,s} ≥ 1 (∞ for a
    failure) and failed (r = ∞).

    Raises:
        ValueError: for an unknown measure, a problem missing from `primary`, or a cost ≤ 0 where
        ratios need positive costs (time, and lower-is-better metrics).
    """
    missing = sorted(set(seeds["problem"]) - set(primary))
    if missing:
        raise ValueError(f"no primary metric for problem(s) {missing}: add them to `primary`")
    frame = seeds.assign(cost=_seed_costs(seeds, primary, measure))
    costs = frame.groupby(GROUP_KEYS, sort=True)["cost"].median().reset_index()
    ratios = []
    for problem, group in costs.groupby("problem", sort=False):
        higher = measure == "metric" and primary[problem].higher_is_better
        cost = group["cost"].to_numpy(float)
        if (cost <= 0).any() and not higher:
            raise ValueError(f"problem {problem}: costs must be positive for ratios, got {cost.tolist()}")
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = cost.max() / cost if higher else cost / cost.min()
        ratios.append(np.where(np.isfinite(ratio), ratio, INF))  # 0/0 or ∞/∞: everyone failed
    costs["ratio"] = np.concatenate(ratios) if ratios else []
    costs["failed"] = np.isinf(costs["ratio"])
    return costs


def performance_profile(ratios: pd.DataFrame, taus=None) -> pd.DataFrame:
    """ρ_s(τ) for every optimizer at each τ: columns optimizer, tau, rho. Default τ: 1, every finite
    ratio, and 4 (AlgoPerf's r_max) or the largest finite ratio if larger: the profile's breakpoints."""
    n_problems = ratios["problem"].nunique()
    finite = ratios.loc[np.isfinite(ratios["ratio"]), "ratio"]
    if taus is None:
        taus = np.unique(np.concatenate([[1.0, max(4.0, finite.max() if len(finite) else 1.0)], finite]))
    rows = [{"optimizer": optimizer, "tau": float(tau), "rho": float((group["ratio"] <= tau).sum() / n_problems)}
            for optimizer, group in ratios.groupby("optimizer") for tau in taus]
    return pd.DataFrame(rows)


def profile_score(ratios: pd.DataFrame, tau_max: float = 4.0) -> pd.DataFrame:
    """AlgoPerf's benchmark score per optimizer: (1 / (τ_max - 1)) ∫_1^τ_max ρ_s(τ) dτ (Dahl et al. 2023,
    §4.5, r_max = 4), in [0, 1]; 1 = the best on every problem. Exact for the step function: a problem
    with ratio r ≤ τ_max adds (τ_max - r) / (τ_max - 1) / n_problems."""
    n_problems = ratios["problem"].nunique()
    r = ratios["ratio"].clip(lower=1.0)
    share = np.where(r <= tau_max, (tau_max - r) / (tau_max - 1), 0.0) / n_problems
    return (ratios.assign(score=share).groupby("optimizer", as_index=False)["score"].sum()
            .sort_values(["score", "optimizer"], ascending=[False, True]).reset_index(drop=True))


# ---------------------------------------------------------------- ranks with their uncertainty
def _scored_values(group: pd.DataFrame, metric: Metric) -> dict[str, np.ndarray]:
    """Per optimizer its seeds' final values, a diverged seed scoring the metric's worst value."""
    values = group["value"].astype(float).where(~group["diverged"].astype(bool), metric.worst)
    return {o: values[group["optimizer"] == o].to_numpy(float) for o in sorted(group["optimizer"].unique())}


def _problem_ranks(problem: str, group: pd.DataFrame, metric, confidence: float) -> list[dict]:
    alpha = 1 - confidence
    by = _scored_values(group, metric)
    sign = 1.0 if metric.higher_is_better else -1.0  # compare "goodness": higher is better

    # every ordered pair's one-sided Welch test at once (a study of 250 optimizers has 62,250 pairs)
    p_greater = welch_greater({o: sign * v for o, v in by.items()})

    def beats(a, b) -> bool:  # the seeds show a better than b
        return p_greater[a, b] < alpha

    failed = (group["diverged"].astype(bool) | group["time_to_target"].isna()).groupby(group["optimizer"]).sum()
    rows = [{"problem": problem, "metric": metric.name, "higher_is_better": metric.higher_is_better,
             "optimizer": o, **summarize_values(pd.Series(v), confidence, (metric.low, metric.high)),
             "failures": int(failed[o]),
             "rank_low": 1 + sum(beats(q, o) for q in by if q != o),
             "rank_high": len(by) - sum(beats(o, q) for q in by if q != o)} for o, v in by.items()]
    goodness = pd.Series([sign * row["mean"] for row in rows])
    for row, rank in zip(rows, goodness.rank(ascending=False, method="min").astype(int)):
        row["rank"] = rank
    best = min(rows, key=lambda row: (row["rank"], row["optimizer"]))["optimizer"]
    for row in rows:
        row["separated_from_best"] = bool(beats(best, row["optimizer"]))
    return rows


def rank_table(seeds: pd.DataFrame, primary: dict, confidence: float = 0.95) -> pd.DataFrame:
    """Per problem × optimizer: the final primary metric's n, mean, std and interval across seeds
    (optimbench.stats.summarize_values, clipped to the metric's range; a diverged seed scores the
    worst value), failures (seeds that diverged or missed the target), rank by mean in the metric's
    direction (1 = best, ties share the smaller rank), and the rank's uncertainty from pairwise one-sided
    Welch tests at level 1 - confidence (optimbench.stats.welch): rank_low = 1 + the optimizers
    significantly better, rank_high = n - the optimizers significantly worse, separated_from_best = the
    best-ranked optimizer is significantly better."""
    rows = [row for problem, group in seeds.groupby("problem", sort=True)
            for row in _problem_ranks(problem, group, primary[problem], confidence)]
    return pd.DataFrame(rows).sort_values(["problem", "rank", "optimizer"]).reset_index(drop=True)


def rank_summary(ranks: pd.DataFrame) -> pd.DataFrame:
    """Per optimizer across problems: mean rank, problems where it ranks first, and problems where no
    other optimizer is significantly better (rank_low == 1)."""
    return (ranks.groupby("optimizer")
            .agg(mean_rank=("rank", "mean"), first=("rank", lambda r: int((r == 1).sum())),
                 possibly_first=("rank_low", lambda r: int((r == 1).sum())), problems=("problem", "nunique"))
            .reset_index().sort_values(["mean_rank", "optimizer"]).reset_index(drop=True))


# ---------------------------------------------------------------- the study's tables
def performance_seeds(seeds: pd.DataFrame, time_column: str = "seconds_to_target") -> pd.DataFrame:
    """This module's per-seed input from optimbench.aggregate's seed_summary: problem, optimizer, seed, value
    (final: the final primary metric, the worst if diverged), time_to_target (`time_column`), diverged."""
    return pd.DataFrame({"problem": seeds["problem"], "optimizer": seeds["optimizer"], "seed": seeds["seed"],
                         "value": seeds["final"].astype(float), "time_to_target": seeds[time_column].astype(float),
                         "diverged": seeds["diverged"].astype(bool)})


def _measure_first(frames) -> pd.DataFrame:
    frame = pd.concat(frames, ignore_index=True)
    return frame[["measure"] + [c for c in frame.columns if c != "measure"]]


def performance_tables(seeds: pd.DataFrame, problems: dict[str, StudyProblem],
                       confidence: float = 0.95) -> dict[str, pd.DataFrame]:
    """The cross-problem tables from seed_summary (`problems`: Plan.problems), one set per measure
    (PERFORMANCE_MEASURES):
    - "time": seconds to the problem's target (AlgoPerf's time-to-result, wall clock);
    - "epochs": epochs to the target, the same profile without timing noise: seconds on a shared machine
      vary between runs of the same work, epochs do not (they ignore an optimizer's cost per step);
    - "metric": the final primary metric, direction-aware.
    Returns performance_ratios (measure + performance_ratios' columns), performance_profile (measure,
    optimizer, tau, fraction = ρ_s(τ)), profile_score (measure, optimizer, score), problem_ranks
    (rank_table) and rank_summary."""
    primary = {name: problem.primary for name, problem in problems.items()}
    ratios, profiles, scores = [], [], []
    for measure, (column, kind) in PERFORMANCE_MEASURES.items():
        ratio = performance_ratios(performance_seeds(seeds, column), primary, kind)
        ratios.append(ratio.assign(measure=measure))
        profiles.append(performance_profile(ratio).rename(columns={"rho": "fraction"}).assign(measure=measure))
        scores.append(profile_score(ratio).assign(measure=measure))
    ranks = rank_table(performance_seeds(seeds), primary, confidence)
    return {"performance_ratios": _measure_first(ratios), "performance_profile": _measure_first(profiles),
            "profile_score": _measure_first(scores), "problem_ranks": ranks, "rank_summary": rank_summary(ranks)}
