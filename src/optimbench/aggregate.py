"""Tables across runs (SPEC §2.4, §2.9, §2.10): every epoch in one long table, seed statistics, per-problem ×
optimizer summaries with ranks, the article's claims with verdicts, the cross-problem performance profiles
and ranks, the runs as they recorded themselves, what the runs cost, and the descent reproduction table.

Nothing here assumes accuracy: each problem of the plan states its metrics (`problem_metrics`: name,
direction, range, from plan["settings"]["problems"]), its primary metric and its target, and every
table reads them. Three policies hold everywhere:
- **Intervals**: `mean_interval` computes every interval of every table (and so of every figure): the
  Student-t interval of the mean across seeds, clipped to the metric's range.
- **Direction**: "best", ranks, targets and separation follow the metric's direction (a negative ELBO or a
  perplexity is better lower, an accuracy higher); rank 1 is the best.
- **Divergence** (`score_divergence`): a run that diverged keeps its epochs before the divergence; from
  the epoch it diverged until its planned last epoch it scores the worst value of each of its problem's
  metrics (accuracy 0, loss, negative ELBO and perplexity +inf) and it never reaches the target (AlgoPerf
  scores a missed target as infinite time). So every optimizer of the config appears in every table and
  ranking, and a diverged seed counts against it.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from optimbench.io import atomic_path, write_csv
from optimbench.problems import Metric

RUN_KEYS = ["problem", "optimizer", "seed"]
GROUP_KEYS = ["problem", "optimizer"]
ATTRIBUTES = ["dataset", "model"]  # a problem's, carried along for readers
SPLITS = ("train", "test")  # the splits of the long table and of the per-seed final_/best_ columns
TRACKED = ["lr", "epoch_seconds", "samples_per_second"]  # the long table's columns beside the metrics
INF = math.inf
POSITIVE = (0.0, INF)  # the range of times, counts and the TRACKED columns
# The article's seven optimizers (SPEC §1.2): its claims compare these among themselves.
ARTICLE_OPTIMIZERS = ["SGD", "Adam", "Adadelta", "Adagrad", "AdamW", "Adamax", "ASGD"]


# ---------------------------------------------------------------- the problems' metrics
@dataclass(frozen=True)
class ProblemMetrics:
    """One problem of the plan as the tables read it: its metrics by name (every `{split}_{name}` column of
    its metrics.csv), its primary metric and its target (the threshold of time to target)."""

    name: str
    metrics: dict  # name -> optimbench.problems.Metric, in the plan's order
    primary: Metric
    target: float

    def columns(self, splits=SPLITS) -> list[str]:
        """The metric names of the given splits, in the plan's order (train_loss, train_acc, test_loss, ...)."""
        return [name for name in self.metrics if name.split("_", 1)[0] in splits]


def _bound(value, default: float) -> float:
    return default if value is None else float(value)


def problem_metrics(settings: dict) -> dict[str, ProblemMetrics]:
    """{problem: ProblemMetrics} from a plan's settings["problems"] (each {"primary", "target", "metrics":
    [{"name", "higher_is_better", "low", "high"}, ...]}; a null bound is unbounded), as
    optimbench.problems.Metric objects: the registry's metrics as the plan recorded them.

    Raises:
        ValueError: a problem whose primary metric is not among its metrics.
    """
    out = {}
    for name, entry in settings["problems"].items():
        metrics = {m["name"]: Metric(m["name"], bool(m["higher_is_better"]), _bound(m.get("low"), -INF),
                                     _bound(m.get("high"), INF)) for m in entry["metrics"]}
        if entry["primary"] not in metrics:
            raise ValueError(f"problem {name}: primary metric {entry['primary']!r} is not among its metrics "
                             f"{list(metrics)}")
        out[name] = ProblemMetrics(name, metrics, metrics[entry["primary"]], float(entry["target"]))
    return out


def _bounds(problem: ProblemMetrics, column: str) -> tuple[float, float]:
    """The range of a column of `problem`'s tables: its metric's, else [0, ∞) (times, counts, lr)."""
    metric = problem.metrics.get(column)
    return (metric.low, metric.high) if metric is not None else POSITIVE


# ---------------------------------------------------------------- loading
def run_identity(spec: dict) -> dict:
    """A run's RUN_KEYS (problem, optimizer, seed) and ATTRIBUTES (dataset, model) from its run.json spec."""
    return {"problem": spec["problem"], "optimizer": spec["optimizer_name"], "seed": int(spec["seed"]),
            "dataset": spec.get("dataset"), "model": spec.get("model")}


def load_run(run_dir) -> pd.DataFrame:
    """One run's metrics.csv with its identity and planned epochs, both from the run.json beside it."""
    run_dir = Path(run_dir)
    spec = json.loads((run_dir / "run.json").read_text())["spec"]
    frame = pd.read_csv(run_dir / "metrics.csv")
    frame = frame.assign(**run_identity(spec), planned_epochs=int(spec["epochs"]))
    keys = RUN_KEYS + ATTRIBUTES
    return frame[keys + [c for c in frame.columns if c not in keys]]


def load_runs(run_dirs, problems: dict[str, ProblemMetrics]) -> pd.DataFrame:
    """All runs' epochs, wide: one row per run and epoch, divergence scored (score_divergence).

    Raises:
        KeyError: a run of a problem missing from `problems`.
    """
    return score_divergence(pd.concat([load_run(d) for d in run_dirs], ignore_index=True), problems)


def score_divergence(wide: pd.DataFrame, problems: dict[str, ProblemMetrics]) -> pd.DataFrame:
    """The divergence policy (module docstring): from the epoch a run diverged to its planned last epoch,
    each metric column of its problem (those present in `wide`) scores that metric's worst value; `scored`
    marks those rows. Input: wide epochs with RUN_KEYS, `diverged` (True on the epoch the loss became
    non-finite) and `planned_epochs`."""
    wide = wide.assign(diverged=wide["diverged"].astype(bool), scored=False)
    fillers = []
    for _, run in wide[wide["diverged"]].groupby(RUN_KEYS):
        first = run.sort_values("epoch").iloc[0]
        worst = {m.name: m.worst for m in problems[first["problem"]].metrics.values() if m.name in wide}
        after = (wide[RUN_KEYS] == first[RUN_KEYS]).all(axis=1) & (wide["epoch"] >= first["epoch"])
        wide.loc[after, list(worst)] = list(worst.values())
        wide.loc[after, ["diverged", "scored"]] = True
        epochs = np.arange(int(first["epoch"]) + 1, int(first["planned_epochs"]) + 1)
        if len(epochs):
            fillers.append(pd.DataFrame({**{k: first[k] for k in RUN_KEYS + ATTRIBUTES if k in first},
                                         "epoch": epochs, **worst, "diverged": True,
                                         "planned_epochs": first["planned_epochs"], "scored": True}))
    out = pd.concat([wide, *fillers], ignore_index=True) if fillers else wide
    return out.sort_values(RUN_KEYS + ["epoch"]).reset_index(drop=True)


def long_table(wide: pd.DataFrame, problems: dict[str, ProblemMetrics]) -> pd.DataFrame:
    """Tidy: problem, optimizer, seed, epoch, scored (a diverged epoch's worst value), metric, value; the
    metrics are each problem's train_ and test_ columns, then TRACKED."""
    frames = []
    for problem, rows in wide.groupby("problem", sort=True):
        columns = [c for c in problems[problem].columns() + TRACKED if c in rows]
        frames.append(rows.melt(id_vars=RUN_KEYS + ["epoch", "scored"], value_vars=columns, var_name="metric",
                                value_name="value"))
    return pd.concat(frames, ignore_index=True)


# ---------------------------------------------------------------- statistics
def epoch_stats(long: pd.DataFrame, problems: dict[str, ProblemMetrics], confidence: float = 0.95) -> pd.DataFrame:
    """Per problem × optimizer × epoch × metric: n (values counted), mean, std and the interval across
    seeds, clipped to the metric's range."""
    rows = []
    keys = GROUP_KEYS + ["epoch", "metric"]
    for key, values in long.groupby(keys)["value"]:
        summary = summarize_values(values, confidence, _bounds(problems[key[0]], key[-1]))
        rows.append({**dict(zip(keys, key)), **summary})
    return pd.DataFrame(rows)


def _best(values: pd.Series, metric: Metric):
    """(best value, its position) of a run's epochs in the metric's direction; (NaN, None) if all NaN."""
    if not values.notna().any():
        return np.nan, None
    values = values.reset_index(drop=True).astype(float)
    position = int(values.idxmax() if metric.higher_is_better else values.idxmin())  # the first best; NaN skipped
    return float(values.iloc[position]), position


def _seed_row(run: pd.DataFrame, problem: ProblemMetrics) -> dict:
    """One run's row of seed_summary (per_seed_summary); `run`: its scored epochs sorted by epoch."""
    primary, target = problem.primary, problem.target
    diverged = bool(run["diverged"].any())
    reached = [] if diverged else [i for i, v in enumerate(run[primary.name]) if primary.reaches(v, target)]
    first = run.iloc[reached[0]] if reached else None
    last = run.iloc[-1]
    best, best_at = _best(run[primary.name], primary)
    row = {"metric": primary.name, "higher_is_better": primary.higher_is_better, "target": target,
           "final": last[primary.name], "best": best,
           "best_epoch": int(run["epoch"].iloc[best_at]) if best_at is not None else np.nan,
           "reached_target": first is not None,
           "epochs_to_target": int(first["epoch"]) if first is not None else np.nan,
           "seconds_to_target": (run.loc[run["epoch"] <= first["epoch"], "epoch_seconds"].sum()
                                 if first is not None else np.nan),
           "mean_epoch_seconds": run["epoch_seconds"].mean(), "diverged": diverged,
           "diverged_epoch": int(run.loc[run["diverged"], "epoch"].min()) if diverged else np.nan,
           "epochs": int(run["epoch"].max())}
    columns = [c for c in problem.columns() if c in run]
    row.update({f"final_{c}": last[c] for c in columns})
    row.update({f"best_{c}": _best(run[c], problem.metrics[c])[0] for c in columns})
    return row


def per_seed_summary(wide: pd.DataFrame, problems: dict[str, ProblemMetrics]) -> pd.DataFrame:
    """Per run (problem × optimizer × seed), in its problem's primary metric (`metric`): final (the last
    planned epoch's value; the metric's worst when the run diverged), best (over its epochs, in the metric's
    direction) and best_epoch, time to the problem's target (reached_target, epochs_to_target,
    seconds_to_target: the epoch_seconds summed through the first epoch meeting it), mean_epoch_seconds,
    divergence, and final_{col} / best_{col} for every train_ and test_ metric of the problem. A diverged run
    never reaches the target (epochs/seconds to target NaN, reached_target False)."""
    rows = []
    for key, run in wide.sort_values("epoch").groupby(RUN_KEYS, sort=True):
        attributes = {k: run[k].iloc[0] for k in ATTRIBUTES if k in run}
        rows.append({**dict(zip(RUN_KEYS, key)), **attributes, **_seed_row(run, problems[key[0]])})
    return pd.DataFrame(rows)


def _goodness(values, metric: Metric) -> np.ndarray:
    """Values signed so that higher is better (a lower-is-better metric's values negated)."""
    return np.asarray(values, dtype=float) * (1.0 if metric.higher_is_better else -1.0)


def _summary_row(group: pd.DataFrame, problem: ProblemMetrics, confidence: float) -> dict:
    """One problem × optimizer's row of optimizer_summary (its seeds' rows of seed_summary)."""
    primary = problem.primary
    row = {**{k: group[k].iloc[0] for k in ATTRIBUTES if k in group}, "metric": primary.name,
           "higher_is_better": primary.higher_is_better, "target": problem.target, "seeds": len(group),
           "divergences": int(group["diverged"].sum()), "runs_reaching_target": int(group["reached_target"].sum()),
           "mean_epoch_seconds": group["mean_epoch_seconds"].mean()}
    columns = [c for c in problem.columns() if f"final_{c}" in group]
    bounds = {"final": (primary.low, primary.high), "best": (primary.low, primary.high),
              "epochs_to_target": POSITIVE, "seconds_to_target": POSITIVE,
              **{f"{kind}_{c}": _bounds(problem, c) for c in columns for kind in ("final", "best")}}
    for column, bound in bounds.items():
        s = summarize_values(group[column], confidence, bound)
        row.update({column: s["mean"], f"{column}_n": s["n"], f"{column}_std": s["std"],
                    f"{column}_ci_low": s["ci_low"], f"{column}_ci_high": s["ci_high"]})
    return row


def optimizer_summary(seeds: pd.DataFrame, problems: dict[str, ProblemMetrics],
                      confidence: float = 0.95) -> pd.DataFrame:
    """Per problem × optimizer: seeds, divergences, runs reaching the target, mean epoch seconds, and for
    final, best, epochs_to_target, seconds_to_target and every final_{col} / best_{col} its mean with _n,
    _std and the interval (_ci_low, _ci_high: mean_interval, clipped to the metric's range); `rank` per
    problem by mean `final` in the metric's direction (1 = best, ties share the smaller rank), and
    `separated_from_best`: the best-ranked optimizer's seeds are significantly better (Welch's one-sided
    test on direction-signed values at level 1 - confidence). Every optimizer is ranked."""
    rows = [{**dict(zip(GROUP_KEYS, key)), **_summary_row(group, problems[key[0]], confidence)}
            for key, group in seeds.groupby(GROUP_KEYS, sort=True)]
    table = pd.DataFrame(rows)
    sign = table["problem"].map(lambda p: 1.0 if problems[p].primary.higher_is_better else -1.0)
    table["rank"] = (table["final"] * sign).groupby(table["problem"]).rank(ascending=False, method="min")
    table["separated_from_best"] = False
    alpha = 1 - confidence
    for problem, group in table.groupby("problem"):
        metric = problems[problem].primary
        final = seeds.loc[seeds["problem"] == problem].groupby("optimizer")["final"]
        best = group.sort_values(["rank", "optimizer"]).iloc[0]["optimizer"]
        for index, row in group.iterrows():
            test = welch(_goodness(final.get_group(best), metric), _goodness(final.get_group(row["optimizer"]), metric))
            table.loc[index, "separated_from_best"] = test["p_greater"] < alpha
    return table.sort_values(["problem", "rank", "optimizer"]).reset_index(drop=True)


# ---------------------------------------------------------------- the article's claims
SIMILAR_ACC = 0.02   # "end similar": final test accuracies within 2 percentage points
RISE = 1.05          # "test loss rises near the end": final loss ≥ 5% above its minimum
HOLDS, CONTRADICTED, INCONCLUSIVE, NOT_TESTED = "holds", "contradicted", "inconclusive", "not tested"


def _pair_verdict(a, b, alpha: float) -> str:
    """'holds' if the seeds show mean(a) > mean(b), 'contradicted' if they show a < b, else 'inconclusive'."""
    test = welch(a, b)
    return HOLDS if test["p_greater"] < alpha else CONTRADICTED if test["p_less"] < alpha else INCONCLUSIVE


def _combine(verdicts) -> str:
    """A claim made of several comparisons: contradicted if any is, holds if all do, else inconclusive."""
    verdicts = list(verdicts)
    return CONTRADICTED if CONTRADICTED in verdicts else HOLDS if all(v == HOLDS for v in verdicts) else INCONCLUSIVE


def _ordered(values: dict, names, alpha: float, higher=True) -> tuple[str, str]:
    """Verdict on `names[0] > names[1] > ... > every other name of values` (lower is better: higher=False)."""
    pairs = list(zip(names, names[1:])) + [(names[-1], other) for other in values if other not in names]
    verdicts = []
    for better, worse in pairs:
        a, b = (values[better], values[worse]) if higher else (-values[better], -values[worse])
        verdicts.append(_pair_verdict(a, b, alpha))
    detail = "; ".join(f"{x} vs {y}: {v}" for (x, y), v in zip(pairs, verdicts))
    return _combine(verdicts), detail


def _means(values: dict, names, fmt="{:.4f}") -> str:
    return ", ".join(f"{n} {fmt.format(np.mean(values[n]))}" for n in names)


def claims_table(seeds: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """The article's findings (SPEC §1.2) on one problem, judged among the article's optimizers present in
    `seeds` (seed_summary rows of one classification problem: final_train_acc, final_test_acc,
    final_test_loss, best_test_loss).

    Each claim's verdict is holds / contradicted / inconclusive from one-sided Welch tests on the per-seed
    values at level 1 - confidence (holds: every comparison the claim makes is significant in its favour;
    contradicted: one is significant against it), or "not tested" when an optimizer it names is missing.
    Columns: claim, compared (the optimizers it was judged among), measured (means and the tests), verdict.
    """
    alpha = 1 - confidence
    present = [n for n in ARTICLE_OPTIMIZERS if n in set(seeds["optimizer"])]
    by = {column: {n: seeds.loc[seeds["optimizer"] == n, column].to_numpy(float) for n in present}
          for column in ("final_train_acc", "final_test_acc", "final_test_loss", "best_test_loss")}
    claims = []

    def claim(text, needed, judge):
        missing = [n for n in needed if n not in present]
        if missing:
            claims.append({"claim": text, "compared": ", ".join(present),
                           "measured": f"not tested: {', '.join(missing)} not in this study", "verdict": NOT_TESTED})
        else:
            verdict, measured = judge()
            claims.append({"claim": text, "compared": ", ".join(present), "measured": measured, "verdict": verdict})

    top4 = ["Adamax", "SGD", "Adam", "AdamW"]

    def trains_best():
        values = by["final_train_acc"]
        verdict, detail = _ordered(values, top4, alpha)
        order = sorted(values, key=lambda n: -np.mean(values[n]))
        return verdict, f"mean final training accuracy: {_means(values, order)}. Tests: {detail}"

    def similar():
        values = by["final_test_acc"]
        verdicts, spreads = [], []
        for i, x in enumerate(top4):
            for y in top4[i + 1:]:
                # Equivalence (two one-sided tests): |mean x - mean y| < SIMILAR_ACC shown, or refuted.
                inside = (welch(values[x] - SIMILAR_ACC, values[y])["p_less"] < alpha
                          and welch(values[x] + SIMILAR_ACC, values[y])["p_greater"] < alpha)
                outside = (welch(values[x] - SIMILAR_ACC, values[y])["p_greater"] < alpha
                           or welch(values[x] + SIMILAR_ACC, values[y])["p_less"] < alpha)
                verdicts.append(HOLDS if inside else CONTRADICTED if outside else INCONCLUSIVE)
                spreads.append(abs(np.mean(values[x]) - np.mean(values[y])))
        return _combine(verdicts), (f"mean final test accuracy: {_means(values, top4)}; largest gap "
                                    f"{max(spreads):.4f} (equivalence tests at ±{SIMILAR_ACC:g})")

    def loss_rises():
        verdicts, parts = [], []
        for name in ["SGD", "Adamax"]:
            ratio = by["final_test_loss"][name] / by["best_test_loss"][name]
            finite = ratio[np.isfinite(ratio)]  # a diverged seed has no final loss to compare
            if len(finite) < 2:
                verdict = INCONCLUSIVE
            elif np.std(finite) == 0:
                verdict = HOLDS if finite.min() >= RISE else CONTRADICTED
            else:
                p_greater = stats.ttest_1samp(finite, RISE, alternative="greater").pvalue
                p_less = 1.0 - p_greater
                verdict = HOLDS if p_greater < alpha else CONTRADICTED if p_less < alpha else INCONCLUSIVE
            verdicts.append(verdict)
            mean = np.mean(finite) if len(finite) else np.nan
            parts.append(f"{name} mean final/lowest test loss {mean:.3f} over {len(finite)} seed(s): {verdict}")
        return _combine(verdicts), "; ".join(parts)

    def lowest_loss():
        values = by["final_test_loss"]
        pairs = [(x, o) for x in ("Adam", "AdamW") for o in present if o not in ("Adam", "AdamW")]
        verdicts = [_pair_verdict(-values[x], -values[o], alpha) for x, o in pairs]
        order = sorted(values, key=lambda n: np.mean(values[n]))
        return _combine(verdicts), f"mean final test loss: {_means(values, order)}"

    def end_worst():
        values = by["final_test_acc"]
        pairs = [(o, x) for x in ("Adagrad", "Adadelta") for o in present if o not in ("Adagrad", "Adadelta")]
        verdicts = [_pair_verdict(values[o], values[x], alpha) for o, x in pairs]
        order = sorted(values, key=lambda n: np.mean(values[n]))
        return _combine(verdicts), f"mean final test accuracy, lowest first: {_means(values, order)}"

    claim("Adamax trains best, then SGD, Adam, AdamW (final training accuracy)", top4, trains_best)
    claim(f"Adamax, SGD, Adam, AdamW end with similar test accuracy (within {SIMILAR_ACC:.0%})", top4, similar)
    claim(f"SGD's and Adamax's test loss rises near the end (final ≥ {RISE:g}× lowest)", ["SGD", "Adamax"],
          loss_rises)
    claim("Adam and AdamW end with the lowest test loss", ["Adam", "AdamW"], lowest_loss)
    claim("Adagrad and Adadelta end worst (test accuracy)", ["Adagrad", "Adadelta"], end_worst)
    return pd.DataFrame(claims, columns=CLAIM_COLUMNS)


CLAIM_COLUMNS = ["claim", "compared", "measured", "verdict"]


def article_problems(settings: dict) -> list[str]:
    """The plan's problems the article's claims are about: a ResNet18 (the registry's resnet18_cifar, or
    the article's resnet18_article) trained for classification."""
    return [name for name, entry in settings["problems"].items()
            if entry["kind"] == "classification" and "resnet18" in entry["model"].lower()]


def article_claims(seeds: pd.DataFrame, settings: dict, confidence: float = 0.95) -> pd.DataFrame:
    """claims_table on each of the article's problems (article_problems) that has runs, with a `problem`
    column; other problems get no claims (an empty table when the study has none of the article's)."""
    frames = [claims_table(seeds[seeds["problem"] == p], confidence).assign(problem=p)
              for p in article_problems(settings) if (seeds["problem"] == p).any()]
    if not frames:
        return pd.DataFrame(columns=["problem"] + CLAIM_COLUMNS)
    return pd.concat(frames, ignore_index=True)[["problem"] + CLAIM_COLUMNS]


# ---------------------------------------------------------------- across problems (SPEC §2.9)
# measure -> (the seed_summary column that is a seed's time to target, optimbench.performance's measure)
PERFORMANCE_MEASURES = {"time": ("seconds_to_target", "time"), "epochs": ("epochs_to_target", "time"),
                        "metric": ("seconds_to_target", "metric")}


def performance_seeds(seeds: pd.DataFrame, time_column: str = "seconds_to_target") -> pd.DataFrame:
    """optimbench.performance's per-seed input from seed_summary: problem, optimizer, seed, value (final:
    the final primary metric, the worst if diverged), time_to_target (`time_column`), diverged."""
    return pd.DataFrame({"problem": seeds["problem"], "optimizer": seeds["optimizer"], "seed": seeds["seed"],
                         "value": seeds["final"].astype(float), "time_to_target": seeds[time_column].astype(float),
                         "diverged": seeds["diverged"].astype(bool)})


def performance_tables(seeds: pd.DataFrame, problems: dict[str, ProblemMetrics],
                       confidence: float = 0.95) -> dict[str, pd.DataFrame]:
    """The cross-problem tables (optimbench.performance) from seed_summary, one set per measure:
    - "time": seconds to the problem's target (AlgoPerf's time-to-result, wall clock);
    - "epochs": epochs to the target, the same profile without timing noise: seconds on a shared machine
      vary between runs of the same work, epochs do not (they ignore an optimizer's cost per step);
    - "metric": the final primary metric, direction-aware.
    Returns performance_ratios (measure + performance.performance_ratios' columns), performance_profile
    (measure, optimizer, tau, fraction = ρ_s(τ)), profile_score (measure, optimizer, score), problem_ranks
    (performance.rank_table) and rank_summary (performance.rank_summary)."""
    from optimbench import performance

    primary = {name: problem.primary for name, problem in problems.items()}
    ratios, profiles, scores = [], [], []
    for measure, (column, kind) in PERFORMANCE_MEASURES.items():
        ratio = performance.performance_ratios(performance_seeds(seeds, column), primary, kind)
        ratios.append(ratio.assign(measure=measure))
        profile = performance.performance_profile(ratio).rename(columns={"rho": "fraction"})
        profiles.append(profile.assign(measure=measure))
        scores.append(performance.profile_score(ratio).assign(measure=measure))
    ranks = performance.rank_table(performance_seeds(seeds), primary, confidence)

    def measure_first(frames):
        frame = pd.concat(frames, ignore_index=True)
        return frame[["measure"] + [c for c in frame.columns if c != "measure"]]

    return {"performance_ratios": measure_first(ratios), "performance_profile": measure_first(profiles),
            "profile_score": measure_first(scores), "problem_ranks": ranks,
            "rank_summary": performance.rank_summary(ranks)}


def problems_table(settings: dict, train_runs: list[dict]) -> pd.DataFrame:
    """One row per problem of the plan: problem, dataset, data_source, model, kind, primary,
    higher_is_better, target, title, runs (its training runs in the plan)."""
    rows = []
    for name, entry in settings["problems"].items():
        rows.append({"problem": name, **{k: entry.get(k) for k in ("dataset", "data_source", "model", "kind",
                                                                   "primary", "higher_is_better", "target",
                                                                   "title")},
                     "runs": sum(run["problem"] == name for run in train_runs)})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- the runs as recorded
def _differences(recorded: dict, planned: dict, prefix: str = "") -> list[str]:
    """Keys whose values differ between two nested specs, as 'key: recorded → planned'."""
    out = []
    for key in sorted(set(recorded) | set(planned)):
        a, b = recorded.get(key), planned.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} recorded, {b!r} in the config")
    return out


def runs_table(train_runs: list[dict]) -> pd.DataFrame:
    """One row per run of the plan: the settings its run.json recorded (what actually ran) and whether they
    match the config's spec for it (`differences` lists each key that does not)."""
    rows = []
    for planned in train_runs:
        info = json.loads((Path(planned["dir"]) / "run.json").read_text())
        spec = info["spec"]
        recorded = {k: v for k, v in spec.items() if k in planned["spec"]}
        differences = _differences(recorded, planned["spec"])
        rows.append({**run_identity(spec), "class": spec["optimizer"]["class"],
                     "kwargs": json.dumps(spec["optimizer"].get("kwargs", {}), sort_keys=True),
                     "demon": bool(spec["optimizer"].get("demon", False)), "lr_schedule": spec.get("lr_schedule"),
                     "epochs": spec["epochs"], "batch_size": spec["batch_size"], "width": spec.get("width"),
                     "train_images": info.get("train_images", spec.get("train_subset")),
                     "test_images": info.get("test_images", spec.get("test_subset")),
                     "device": info["device_name"], "threads": info["threads"], "bf16": info.get("bf16"),
                     "torch": info["versions"]["torch"], "python": info["versions"]["python"],
                     "git": info.get("git_commit"), "resumed_after_epoch": info.get("resumed_after_epoch"),
                     "diverged": info["diverged"], "diverged_epoch": info.get("diverged_epoch"),
                     "matches_config": not differences, "differences": "; ".join(differences)})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- descent
def descent_reproduction(runs: pd.DataFrame) -> pd.DataFrame:
    """For each article run: epochs, final point and whether it reached the minimum, per gradient."""
    article = runs[runs["kind"] == "article"]
    if article.empty:
        return pd.DataFrame()
    values = ["epochs", "converged", "final_x", "final_y", "final_f", "distance_to_minimum", "reached_minimum"]
    settings = article.groupby(["function", "method"])[["lr", "momentum", "h", "start_x", "start_y"]].first()
    table = article.pivot(index=["function", "method"], columns="gradient", values=values)
    table.columns = [f"{value}_{gradient}" for value, gradient in table.columns]
    return settings.join(table).reset_index()


# ---------------------------------------------------------------- cost
def run_cost(run_dir, benchmark_path, gpu_share: float) -> dict:
    """What one run cost, split into its start-up (a fixed cost per run) and its epochs.

    The job's wall time comes from Snakemake's benchmark file; `startup_seconds` (process start to the
    first epoch: interpreter, imports, data load, model build) from run.json. A resumed run's benchmark file
    timed the last attempt only: its start-up plus its epochs' seconds stand in then. Device-seconds are
    seconds × the share of a device the run held: `gpu_share` GPUs on CUDA, its threads (CPU cores) on the CPU.
    """
    run_dir = Path(run_dir)
    info = json.loads((run_dir / "run.json").read_text())
    metrics = pd.read_csv(run_dir / "metrics.csv")
    benchmark = Path(benchmark_path) if benchmark_path else None
    job_seconds = (float(pd.read_csv(benchmark, sep="\t")["s"].iloc[-1])
                   if benchmark is not None and benchmark.exists() else np.nan)
    measured = metrics["epoch_seconds"].sum() + metrics["eval_seconds"].sum()
    startup = info.get("startup_seconds")
    if startup is None:  # runs recorded before start-up was measured: the job's time beyond its epochs
        known = np.isfinite(job_seconds) and not info.get("resumed_after_epoch")
        startup = max(0.0, job_seconds - measured) if known else 0.0
    wall = measured + startup if info.get("resumed_after_epoch") or np.isnan(job_seconds) else job_seconds
    on_gpu = info["device"].startswith("cuda")
    share = gpu_share if on_gpu else info["threads"]
    return {**run_identity(info["spec"]), "device": info["device_name"], "unit": "GPU" if on_gpu else "CPU core",
            "share": share, "epochs": len(metrics), "train_seconds": metrics["epoch_seconds"].sum(),
            "eval_seconds": metrics["eval_seconds"].sum(), "job_seconds": job_seconds, "startup_seconds": startup,
            "samples_per_second": metrics["samples_per_second"].median(), "device_seconds": wall * share,
            "startup_device_seconds": startup * share, "epoch_device_seconds": (wall - startup) * share}


def cost_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per problem × optimizer (summed over seeds) and for the whole study (problem: every problem's name,
    optimizer 'all'): runs, epochs, seconds,
    device-seconds (GPU-seconds or CPU core-seconds), split into start-up per run and device-seconds per
    epoch, and the median samples/s."""
    sums = ["epochs", "train_seconds", "eval_seconds", "job_seconds", "startup_seconds", "device_seconds",
            "startup_device_seconds", "epoch_device_seconds"]

    def summarize(frame: pd.DataFrame) -> dict:
        return {"device": ", ".join(sorted(frame["device"].unique())), "unit": ", ".join(sorted(frame["unit"].unique())),
                "share": frame["share"].median(), "runs": len(frame), **{c: frame[c].sum(min_count=1) for c in sums},
                "samples_per_second": frame["samples_per_second"].median(),
                "startup_device_seconds_per_run": frame["startup_device_seconds"].mean(),
                "device_seconds_per_epoch": frame["epoch_device_seconds"].sum() / frame["epochs"].sum()}

    def names(column: str) -> str:
        return ", ".join(str(v) for v in runs[column].unique())

    rows = [{"problem": p, "optimizer": o, "dataset": frame["dataset"].iloc[0], "model": frame["model"].iloc[0],
             **summarize(frame)} for (p, o), frame in runs.groupby(GROUP_KEYS, sort=False)]
    rows.append({"problem": names("problem"), "optimizer": "all", "dataset": names("dataset"),
                 "model": names("model"), **summarize(runs)})
    return pd.DataFrame(rows)


def projected_device_hours(cost: pd.DataFrame, epochs: int, seeds: int, optimizers: int) -> float:
    """Device-hours of a study of `optimizers` × `seeds` runs of `epochs` epochs at this study's measured
    pace: start-up per run × runs + device-seconds per epoch × epochs × runs."""
    total = cost.loc[cost["optimizer"] == "all"].iloc[0]
    runs = optimizers * seeds
    return (total["startup_device_seconds_per_run"] * runs + total["device_seconds_per_epoch"] * epochs * runs) / 3600


# ---------------------------------------------------------------- writing
def write_table(frame: pd.DataFrame, out_dir: Path, name: str) -> None:
    """CSV for people, Parquet for machines, both written atomically."""
    write_csv(out_dir / f"{name}.csv", frame)
    with atomic_path(out_dir / f"{name}.parquet") as tmp:
        frame.to_parquet(tmp, index=False)


def aggregate_train(plan: dict, out_dir) -> dict[str, pd.DataFrame]:
    """Every training table from the runs of `plan` (optimbench.study.read_plan), each problem scored in
    its own metrics (problem_metrics)."""
    settings, train_runs = plan["settings"], plan["train_runs"]
    confidence = settings["confidence"]
    problems = problem_metrics(settings)
    wide = load_runs([run["dir"] for run in train_runs], problems)
    seeds = per_seed_summary(wide, problems)
    long = long_table(wide, problems)
    tables = {"problems": problems_table(settings, train_runs), "runs": runs_table(train_runs),
              "epochs_long": long, "epoch_stats": epoch_stats(long, problems, confidence), "seed_summary": seeds,
              "optimizer_summary": optimizer_summary(seeds, problems, confidence),
              "article_claims": article_claims(seeds, settings, confidence),
              **performance_tables(seeds, problems, confidence),
              "cost": cost_table(pd.DataFrame([run_cost(run["dir"], run["benchmark"], settings["gpu_share"])
                                               for run in train_runs]))}
    for name, frame in tables.items():
        write_table(frame, Path(out_dir), name)
    return tables


def aggregate_descent(plan: dict, out_dir) -> dict[str, pd.DataFrame]:
    """The descent tables from the runs of `plan`."""
    runs = pd.concat([pd.read_csv(Path(run["dir"]) / "summary.csv") for run in plan["descent_runs"]],
                     ignore_index=True)
    tables = {"descent_runs": runs, "descent_reproduction": descent_reproduction(runs)}
    for name, frame in tables.items():
        write_table(frame, Path(out_dir), name)
    return tables


def rankings(default: pd.DataFrame, tuned: pd.DataFrame) -> pd.DataFrame:
    """The default-hyperparameter ranking beside the tuned one (optimizer_summary tables), per problem and
    optimizer: rank, final (the primary metric) with its interval, separated_from_best and divergences,
    each suffixed _default and _tuned."""
    keys = GROUP_KEYS + ["metric", "higher_is_better"]
    columns = keys + ["rank", "final", "final_ci_low", "final_ci_high", "separated_from_best", "divergences"]
    both = default[columns].merge(tuned[columns], on=keys, how="outer", suffixes=("_default", "_tuned"))
    return both.sort_values(["problem", "rank_tuned", "optimizer"]).reset_index(drop=True)


def selection_table(selections: dict) -> pd.DataFrame:
    """One row per problem × optimizer of the selections ({problem: {optimizer: selection JSON}}): trial,
    setting (JSON), criterion, score, all_trials_diverged, at_edge."""
    return pd.DataFrame([{"problem": problem, "optimizer": optimizer, "trial": chosen["trial"],
                          "setting": json.dumps(chosen["setting"], sort_keys=True), "criterion": chosen["criterion"],
                          "score": chosen["score"], "all_trials_diverged": chosen["all_diverged"],
                          "at_edge": "; ".join(chosen["at_edge"])}
                         for problem, chosen_of in selections.items() for optimizer, chosen in chosen_of.items()])


def aggregate_tune(plan: dict, out_dir) -> dict[str, pd.DataFrame]:
    """The tuning stage's tables (SPEC §2.8), per problem: every trial, each selection (with a warning when
    it sits at the edge of its range), budget curves, the final runs' tables and claims, and the two
    rankings side by side. plan["tune"]["selections"] is {problem: {optimizer: selection JSON path}}."""
    from optimbench import tune

    out_dir = Path(out_dir)
    settings, stage = plan["settings"], plan["tune"]
    confidence = settings["confidence"]
    problems = problem_metrics(settings)
    trials = tune.trials_table(plan)
    chosen = {problem: {optimizer: json.loads(Path(path).read_text()) for optimizer, path in paths.items()}
              for problem, paths in stage["selections"].items()}
    selection = selection_table(chosen)
    picked = set(zip(selection["problem"], selection["optimizer"], selection["trial"]))
    trials["selected"] = [key in picked for key in zip(trials["problem"], trials["optimizer"], trials["trial"])]
    finals = [{**run, "spec": tune.apply_selection(run["spec"], chosen[run["problem"]][run["optimizer"]])}
              for run in stage["finals"]]
    seeds = per_seed_summary(load_runs([run["dir"] for run in finals], problems), problems)
    summary = optimizer_summary(seeds, problems, confidence)
    default = pd.read_parquet(out_dir / "optimizer_summary.parquet")
    tables = {"tune_trials": trials, "tune_selection": selection,
              "budget_curves": tune.budget_curves(trials, stage["select_by"], problems),
              "tuned_runs": runs_table(finals), "tuned_seed_summary": seeds, "tuned_optimizer_summary": summary,
              "tuned_claims": article_claims(seeds, settings, confidence), "rankings": rankings(default, summary)}
    for name, frame in tables.items():
        write_table(frame, out_dir, name)
    return tables


def main(argv=None) -> None:
    from optimbench.study import read_plan

    parser = argparse.ArgumentParser(description="Aggregate the training runs or the descent runs of a study.")
    parser.add_argument("stage", choices=["train", "descent", "tune"])
    parser.add_argument("--plan", required=True, help="the study's plan.json (the `plan` rule writes it)")
    parser.add_argument("--out", required=True, help="tables folder")
    args = parser.parse_args(argv)
    plan = read_plan(args.plan)
    stages = {"train": aggregate_train, "descent": aggregate_descent, "tune": aggregate_tune}
    tables = stages[args.stage](plan, args.out)
    for name, frame in tables.items():
        print(f"{args.out}/{name}: {len(frame)} rows")


if __name__ == "__main__":
    main()
