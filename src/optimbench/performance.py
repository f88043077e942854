"""One verdict across problems (SPEC §2.9): Dolan–Moré performance profiles and per-problem ranks.

Performance profile (Dolan & Moré 2002, "Benchmarking optimization software with performance profiles",
Math. Programming 91, §2; AlgoPerf, Dahl et al. 2023, §4.5, scores training algorithms the same way):
for problem p and optimizer s with cost t_{p,s}, the performance ratio is r_{p,s} = t_{p,s} / min_s t_{p,s},
and the profile of s is ρ_s(τ) = |{p : r_{p,s} ≤ τ}| / n_problems, a step function of τ ≥ 1. A failure
(a diverged run, a missed target) has r = ∞: it counts against s at every τ.

Two costs (`measure`):
- "time": time (seconds or epochs) to the problem's target; a seed that failed or never reached the
  target is a failure. Per problem × optimizer the cost is the mean over the other seeds, ∞ when at least
  half fail (AlgoPerf scores a missed target as infinite time).
- "metric": the final primary metric, direction-aware: r = value / best for lower-is-better metrics
  (perplexity, negative ELBO, loss), r = best / value for higher-is-better ones (accuracy); per problem ×
  optimizer the mean over its completed seeds (the centre every comparison uses, optimbench.compare), ∞ when
  at least half its seeds failed (optimbench.metrics.failed).

Scores carry a seed-bootstrap interval (`bootstrap_scores`: seeds resampled with replacement within each
problem × optimizer, the same draw for every optimizer since seeds are paired, the whole profile recomputed,
percentile interval; a seeded numpy Generator, so the report is reproducible: scipy.stats.bootstrap resamples
one statistic of one data set and cannot redo a profile across optimizers and problems). Places follow the
procedure's rule (optimbench.compare.places): x is placed above y only when the bootstrap interval of
score(x) − score(y) excludes 0.

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

from optimbench.compare import beats, places, study_comparisons, unordered, with_failed
from optimbench.metrics import Metric
from optimbench.runs import GROUP_KEYS, StudyProblem
from optimbench.stats import summarize_values

INF = math.inf
# measure -> (the seed_summary column that is a seed's time to target, the measure of performance_ratios)
PERFORMANCE_MEASURES = {"time": ("seconds_to_target", "time"), "epochs": ("epochs_to_target", "time"),
                        "metric": ("seconds_to_target", "metric")}
BOOTSTRAP_RESAMPLES = 1000  # seed-bootstrap draws of the profile scores
BOOTSTRAP_SEED = 0  # the draws' numpy seed: the same report from the same runs
TAU_MAX = 4.0  # AlgoPerf's r_max: the profile score integrates ρ(τ) over 1 ≤ τ ≤ TAU_MAX


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
            # min_count: a run without timings (a published one) has no time to target, not 0 s
            "time_to_target": (float(epochs[time_column].iloc[: first + 1].sum(min_count=1)) if first is not None
                               else np.nan),
            "epochs_to_target": int(epochs["epoch"].iloc[first]) if first is not None else np.nan,
            "diverged": diverged}


# ---------------------------------------------------------------- costs and ratios
def _lost(seeds: pd.DataFrame) -> pd.Series:
    return seeds["failed"].astype(bool) if "failed" in seeds else seeds["diverged"].astype(bool)


def _seed_costs(seeds: pd.DataFrame, primary: dict, measure: str) -> pd.Series:
    """A seed's cost; NaN for a failed seed (or one that missed the target: time), counted by _costs."""
    if measure == "time":
        failed = _lost(seeds) | seeds["time_to_target"].isna()
        return seeds["time_to_target"].astype(float).where(~failed, np.nan)
    if measure == "metric":
        return seeds["value"].astype(float).where(~_lost(seeds), np.nan)
    raise ValueError(f"measure must be 'time' or 'metric', not {measure!r}")


def _costs(frame: pd.DataFrame) -> pd.DataFrame:
    """Per problem × optimizer the mean cost of its seeds; ∞ when half or more of them failed (NaN)."""
    grouped = frame.groupby(GROUP_KEYS, sort=True)["cost"]
    costs = grouped.mean().reset_index()
    lost = grouped.apply(lambda c: c.isna().sum() * 2 >= len(c)).to_numpy()
    costs.loc[lost, "cost"] = INF
    return costs


def performance_ratios(seeds: pd.DataFrame, primary: dict, measure: str = "time") -> pd.DataFrame:
    """Per problem × optimizer: cost (mean over seeds, module docstring), ratio r_{p,s} ≥ 1 (∞ for a
    failure) and failed (r = ∞).

    Raises:
        ValueError: for an unknown measure, a problem missing from `primary`, or a cost ≤ 0 where
        ratios need positive costs (time, and lower-is-better metrics).
    """
    missing = sorted(set(seeds["problem"]) - set(primary))
    if missing:
        raise ValueError(f"no primary metric for problem(s) {missing}: add them to `primary`")
    costs = _costs(seeds.assign(cost=_seed_costs(seeds, primary, measure)))
    ratios = []
    for problem, group in costs.groupby("problem", sort=False):
        higher = measure == "metric" and primary[problem].higher_is_better
        cost = group["cost"].to_numpy(float)
        if (cost <= 0).any() and not higher:
            raise ValueError(f"problem {problem}: costs must be positive for ratios, got {cost.tolist()}")
        finite = cost[np.isfinite(cost)]  # a failure (∞) is no one's reference
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = (finite.max() / cost if higher else cost / finite.min()) if len(finite) else np.full_like(cost, INF)
        ratio = np.where(np.isinf(cost), INF, ratio)
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


def profile_score(ratios: pd.DataFrame, tau_max: float = TAU_MAX) -> pd.DataFrame:
    """AlgoPerf's benchmark score per optimizer: (1 / (τ_max - 1)) ∫_1^τ_max ρ_s(τ) dτ (Dahl et al. 2023,
    §4.5, r_max = 4), in [0, 1]; 1 = the best on every problem. Exact for the step function: a problem
    with ratio r ≤ τ_max adds (τ_max - r) / (τ_max - 1) / n_problems."""
    n_problems = ratios["problem"].nunique()
    r = ratios["ratio"].clip(lower=1.0)
    share = np.where(r <= tau_max, (tau_max - r) / (tau_max - 1), 0.0) / n_problems
    return (ratios.assign(score=share).groupby("optimizer", as_index=False)["score"].sum()
            .sort_values(["score", "optimizer"], ascending=[False, True]).reset_index(drop=True))


# ---------------------------------------------------------------- ranks with their uncertainty
def _problem_ranks(problem: str, group: pd.DataFrame, metric, confidence: float, comparisons) -> list[dict]:
    lost = _lost(group)
    failures = (lost | group["time_to_target"].isna()).groupby(group["optimizer"]).sum()
    failed = lost.groupby(group["optimizer"]).sum()
    sign = 1.0 if metric.higher_is_better else -1.0
    rows = []
    for o in sorted(group["optimizer"].unique()):
        values = group.loc[(group["optimizer"] == o) & ~lost, "value"].astype(float)
        rows.append({"problem": problem, "metric": metric.name, "higher_is_better": metric.higher_is_better,
                     "optimizer": o, **summarize_values(values, confidence, (metric.low, metric.high)),
                     "failed": int(failed[o]), "failures": int(failures[o])})
    key = {r["optimizer"]: (r["failed"], -sign * np.nan_to_num(r["mean"], nan=-np.inf)) for r in rows}
    names = sorted(key, key=lambda o: (key[o], o))
    allowed, shared = places(names, beats(comparisons, problem)), unordered(names, beats(comparisons, problem))
    for row in rows:
        o = row["optimizer"]
        row["rank"] = 1 + sum(key[q] < key[o] for q in key)
        row["rank_low"], row["rank_high"] = allowed[o]
        row["shares_with"] = shared[o]
        row["separated_from_best"] = bool(o != names[0] and beats(comparisons, problem)(names[0], o))
    return rows


def rank_table(seeds: pd.DataFrame, primary: dict, confidence: float = 0.95,
               comparisons: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per problem × optimizer: the final primary metric's n, mean, std and interval over its completed seeds
    (optimbench.stats.summarize_values, clipped to the metric's range), failed (failed runs) and failures
    (failed or missed the target), rank (the order shown: fewer failed runs, then the mean, in the metric's
    direction; 1 = first) and the places the comparison procedure allows (optimbench.compare.places on
    `comparisons`, the study's comparison table; made from `seeds` without a focus when None): rank_low = 1 +
    the optimizers decided better, rank_high = n − those decided worse; shares_with: those not ordered against
    it (compare.unordered); separated_from_best: the first is decided better. `seeds`: performance_seeds rows
    (with `failed` when known)."""
    seeds = seeds if "failed" in seeds else seeds.assign(failed=seeds["diverged"].astype(bool))
    if comparisons is None:
        comparisons = study_comparisons(seeds.rename(columns={"value": "final"}),
                                        {p: m.higher_is_better for p, m in primary.items()}, confidence)
    rows = [row for problem, group in seeds.groupby("problem", sort=True)
            for row in _problem_ranks(problem, group, primary[problem], confidence, comparisons)]
    return pd.DataFrame(rows).sort_values(["problem", "rank", "optimizer"]).reset_index(drop=True)


def rank_summary(ranks: pd.DataFrame) -> pd.DataFrame:
    """Per optimizer across problems: mean rank, problems where it is first alone (the procedure places it
    first: rank_high == 1), and problems where no other optimizer is decided better (rank_low == 1)."""
    return (ranks.groupby("optimizer")
            .agg(mean_rank=("rank", "mean"), first=("rank_high", lambda r: int((r == 1).sum())),
                 possibly_first=("rank_low", lambda r: int((r == 1).sum())), problems=("problem", "nunique"))
            .reset_index().sort_values(["mean_rank", "optimizer"]).reset_index(drop=True))


# ---------------------------------------------------------------- the study's tables
def performance_seeds(seeds: pd.DataFrame, time_column: str = "seconds_to_target") -> pd.DataFrame:
    """This module's per-seed input from optimbench.aggregate's seed_summary: problem, optimizer, seed, value
    (final: the final primary metric, the worst if diverged), time_to_target (`time_column`), diverged, failed."""
    seeds = with_failed(seeds)
    return pd.DataFrame({"problem": seeds["problem"], "optimizer": seeds["optimizer"], "seed": seeds["seed"],
                         "value": seeds["final"].astype(float), "time_to_target": seeds[time_column].astype(float),
                         "diverged": seeds["diverged"].astype(bool), "failed": seeds["failed"].astype(bool)})


def _measure_first(frames) -> pd.DataFrame:
    frame = pd.concat(frames, ignore_index=True)
    return frame[["measure"] + [c for c in frame.columns if c != "measure"]]


def performance_tables(seeds: pd.DataFrame, problems: dict[str, StudyProblem], confidence: float = 0.95,
                       comparisons: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """The cross-problem tables from seed_summary (`problems`: Plan.problems), one set per measure
    (PERFORMANCE_MEASURES):
    - "time": seconds to the problem's target (AlgoPerf's time-to-result, wall clock);
    - "epochs": epochs to the target, the same profile without timing noise: seconds on a shared machine
      vary between runs of the same work, epochs do not (they ignore an optimizer's cost per step);
    - "metric": the final primary metric, direction-aware.
    Returns performance_ratios (measure + performance_ratios' columns), performance_profile (measure,
    optimizer, tau, fraction = ρ_s(τ)), profile_score (bootstrap_scores' columns), problem_ranks
    (rank_table) and rank_summary."""
    primary = {name: problem.primary for name, problem in problems.items()}
    ratios, profiles, scores = [], [], []
    # Runs without timings (published runs: another machine's, not recorded) are left out of the time measure only.
    timed = seeds[seeds["mean_epoch_seconds"].notna()] if "mean_epoch_seconds" in seeds else seeds
    for measure, (column, kind) in PERFORMANCE_MEASURES.items():
        ratio = performance_ratios(performance_seeds(timed if measure == "time" else seeds, column), primary, kind)
        ratios.append(ratio.assign(measure=measure))
        profiles.append(performance_profile(ratio).rename(columns={"rho": "fraction"}).assign(measure=measure))
        scores.append(bootstrap_scores(performance_seeds(seeds, column), primary, kind, confidence)
                      .assign(measure=measure))
    ranks = rank_table(performance_seeds(seeds), primary, confidence, comparisons)
    return {"performance_ratios": _measure_first(ratios), "performance_profile": _measure_first(profiles),
            "profile_score": _measure_first(scores), "problem_ranks": ranks, "rank_summary": rank_summary(ranks)}


# ---------------------------------------------------------------- profile scores with their uncertainty
def _problem_draws(group: pd.DataFrame, names: list[str], higher: bool, costs: pd.Series,
                   rng: np.random.Generator, resamples: int) -> np.ndarray:
    """One problem's share of every optimizer's score in each seed-bootstrap draw (resamples × optimizers): the
    problem's seeds drawn with replacement, the same draw for every optimizer (paired: a seed is a unit of the
    problem, not of one optimizer), each optimizer's cost the mean of its drawn completed seeds (∞ when half or
    more of them failed), the ratio to the best and the share of the score (profile_score)."""
    grid = group.assign(cost=costs).pivot_table(index="seed", columns="optimizer", values="cost", aggfunc="first",
                                                dropna=False).reindex(columns=names)
    matrix = grid.to_numpy(float)  # seeds × optimizers; NaN: a failed seed (or none)
    drawn = matrix[rng.integers(0, len(matrix), size=(resamples, len(matrix)))]  # resamples × seeds × optimizers
    lost = np.isnan(drawn).sum(axis=1) * 2 >= drawn.shape[1]
    kept = np.isfinite(drawn)
    with np.errstate(invalid="ignore", divide="ignore"):
        cost = np.where(lost, INF, np.where(kept, drawn, 0.0).sum(axis=1) / kept.sum(axis=1))
        if higher:
            ratio = np.where(np.isinf(cost), -INF, cost).max(axis=1, keepdims=True) / cost
        else:
            ratio = cost / cost.min(axis=1, keepdims=True)
    ratio = np.where(np.isfinite(ratio), np.maximum(ratio, 1.0), INF)
    return np.where(ratio <= TAU_MAX, (TAU_MAX - ratio) / (TAU_MAX - 1), 0.0)


def bootstrap_scores(seeds: pd.DataFrame, primary: dict, measure: str = "time", confidence: float = 0.95,
                     resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> pd.DataFrame:
    """profile_score per optimizer with its seed-bootstrap percentile interval at `confidence` (score_low,
    score_high) and its places (place_low, place_high): x above y only when the interval of score(x) −
    score(y) over the same draws leaves out 0 (module docstring). Deterministic for a given `seed`."""
    score = profile_score(performance_ratios(seeds, primary, measure))
    names = score["optimizer"].tolist()
    rng = np.random.default_rng(seed)
    costs = _seed_costs(seeds, primary, measure)
    draws = np.zeros((resamples, len(names)))
    n_problems = seeds["problem"].nunique()
    for problem, group in seeds.groupby("problem", sort=True):
        higher = measure == "metric" and primary[problem].higher_is_better
        draws += _problem_draws(group, names, higher, costs[group.index], rng, resamples) / n_problems
    tail = (1 - confidence) / 2
    low, high = np.quantile(draws, [tail, 1 - tail], axis=0) if resamples else (score["score"],) * 2
    index = {o: i for i, o in enumerate(names)}

    def above(x: str, y: str) -> bool:
        return bool(resamples) and bool(np.quantile(draws[:, index[x]] - draws[:, index[y]], tail) > 0)

    allowed, shared = places(names, above), unordered(names, above)
    return score.assign(score_low=low, score_high=high, place_low=[allowed[o][0] for o in names],
                        place_high=[allowed[o][1] for o in names], shares_with=[shared[o] for o in names])
