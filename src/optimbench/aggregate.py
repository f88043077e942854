"""The aggregate stage (SPEC §2.4, §2.9, §2.10): the runs of the plan loaded into tables. Every epoch in one
long table, seed statistics, per-problem × optimizer summaries with ranks, the runs as they recorded
themselves and the descent reproduction table are built here; the article's claims (optimbench.claims),
the cross-problem profiles and ranks (optimbench.performance), the cost (optimbench.cost) and the tuning
tables (optimbench.tune) are built by their modules from these, and `aggregate_train`, `aggregate_descent`
and `aggregate_tune` write each stage's tables under the names optimbench.files gives them.

Nothing here assumes accuracy: each problem of the plan states its metrics (Plan.problems:
optimbench.runs.StudyProblem, each metric's name, direction and range), its primary metric and its target,
and every table reads them. Three policies hold everywhere:
- **Intervals**: optimbench.stats.mean_interval computes every interval of every table (and so of every
  figure): the Student-t interval of the mean across seeds, clipped to the metric's range.
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
import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd

from optimbench import tune
from optimbench.claims import article_claims
from optimbench.cost import plan_cost
from optimbench.files import DESCENT_SUMMARY_COLUMNS, DESCENT_TABLES, TRAIN_TABLES, TUNE_TABLES
from optimbench.focus import focus_table
from optimbench.io import atomic_path, write_csv
from optimbench.labels import code_label
from optimbench.metrics import Metric
from optimbench.performance import performance_tables, seed_outcome
from optimbench.runs import GROUP_KEYS, POSITIVE, RUN_KEYS, Plan, StudyProblem, TrainRun, apply_selection, read_plan
from optimbench.stats import summarize_values, welch
from optimbench.store import comparable
from optimbench.tables import read_table

ATTRIBUTES = ["dataset", "model"]  # a problem's, carried along for readers
TRACKED = ["lr", "epoch_seconds", "samples_per_second"]  # the long table's columns beside the metrics


# ---------------------------------------------------------------- loading
def run_identity(spec: dict) -> dict:
    """A run's RUN_KEYS (problem, optimizer, seed) and ATTRIBUTES (dataset, model) from its run.json spec."""
    return {"problem": spec["problem"], "optimizer": spec["optimizer_name"], "seed": int(spec["seed"]),
            "dataset": spec.get("dataset"), "model": spec.get("model")}


def load_run(run_dir) -> pd.DataFrame:
    """One run's metrics.csv with its identity and planned epochs, both from the run.json beside it."""
    run_dir = Path(run_dir)
    spec = json.loads((run_dir / "run.json").read_text())["spec"]
    frame = read_table(run_dir / "metrics.csv")
    frame = frame.assign(**run_identity(spec), planned_epochs=int(spec["epochs"]))
    keys = RUN_KEYS + ATTRIBUTES
    return frame[keys + [c for c in frame.columns if c not in keys]]


def load_runs(run_dirs, problems: dict[str, StudyProblem]) -> pd.DataFrame:
    """All runs' epochs, wide: one row per run and epoch, divergence scored (score_divergence).

    Raises:
        KeyError: a run of a problem missing from `problems`.
    """
    return score_divergence(pd.concat([load_run(d) for d in run_dirs], ignore_index=True), problems)


def score_divergence(wide: pd.DataFrame, problems: dict[str, StudyProblem]) -> pd.DataFrame:
    """The divergence policy (module docstring): from the epoch a run diverged to its planned last epoch,
    each metric column of its problem (those present in `wide`) scores that metric's worst value; `scored`
    marks those rows. Input: wide epochs with RUN_KEYS, `diverged` (True on the epoch the loss diverged,
    optimbench.metrics.diverged) and `planned_epochs`."""
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


def long_table(wide: pd.DataFrame, problems: dict[str, StudyProblem]) -> pd.DataFrame:
    """Tidy: problem, optimizer, seed, epoch, scored (a diverged epoch's worst value), metric, value; the
    metrics are each problem's train_ and test_ columns, then TRACKED."""
    frames = []
    for problem, rows in wide.groupby("problem", sort=True):
        columns = [c for c in problems[problem].columns() + TRACKED if c in rows]
        frames.append(rows.melt(id_vars=RUN_KEYS + ["epoch", "scored"], value_vars=columns, var_name="metric",
                                value_name="value"))
    return pd.concat(frames, ignore_index=True)


# ---------------------------------------------------------------- statistics
def epoch_stats(long: pd.DataFrame, problems: dict[str, StudyProblem], confidence: float = 0.95) -> pd.DataFrame:
    """Per problem × optimizer × epoch × metric: n (values counted), mean, std and the interval across
    seeds, clipped to the metric's range."""
    rows = []
    keys = GROUP_KEYS + ["epoch", "metric"]
    for key, values in long.groupby(keys)["value"]:
        summary = summarize_values(values, confidence, problems[key[0]].bounds(key[-1]))
        rows.append({**dict(zip(keys, key)), **summary})
    return pd.DataFrame(rows)


def _best(values: pd.Series, metric: Metric):
    """(best value, its position) of a run's epochs in the metric's direction; (NaN, None) if all NaN."""
    if not values.notna().any():
        return np.nan, None
    values = values.reset_index(drop=True).astype(float)
    position = int(values.idxmax() if metric.higher_is_better else values.idxmin())  # the first best; NaN skipped
    return float(values.iloc[position]), position


def _seed_row(run: pd.DataFrame, problem: StudyProblem) -> dict:
    """One run's row of seed_summary (per_seed_summary); `run`: its scored epochs sorted by epoch. Final
    value and time to target are optimbench.performance.seed_outcome's (timed in epoch_seconds)."""
    primary = problem.primary
    outcome = seed_outcome(run, primary, problem.target, "epoch_seconds")
    last = run.iloc[-1]
    best, best_at = _best(run[primary.name], primary)
    row = {"metric": primary.name, "higher_is_better": primary.higher_is_better, "target": problem.target,
           "final": outcome["value"], "best": best,
           "best_epoch": int(run["epoch"].iloc[best_at]) if best_at is not None else np.nan,
           "reached_target": not pd.isna(outcome["epochs_to_target"]),
           "epochs_to_target": outcome["epochs_to_target"], "seconds_to_target": outcome["time_to_target"],
           "mean_epoch_seconds": run["epoch_seconds"].mean(), "diverged": outcome["diverged"],
           "diverged_epoch": int(run.loc[run["diverged"], "epoch"].min()) if outcome["diverged"] else np.nan,
           "epochs": int(run["epoch"].max())}
    columns = [c for c in problem.columns() if c in run]
    row.update({f"final_{c}": last[c] for c in columns})
    row.update({f"best_{c}": _best(run[c], problem.metrics[c])[0] for c in columns})
    return row


def per_seed_summary(wide: pd.DataFrame, problems: dict[str, StudyProblem]) -> pd.DataFrame:
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


def _summary_row(group: pd.DataFrame, problem: StudyProblem, confidence: float) -> dict:
    """One problem × optimizer's row of optimizer_summary (its seeds' rows of seed_summary)."""
    primary = problem.primary
    row = {**{k: group[k].iloc[0] for k in ATTRIBUTES if k in group}, "metric": primary.name,
           "higher_is_better": primary.higher_is_better, "target": problem.target, "seeds": len(group),
           "divergences": int(group["diverged"].sum()), "runs_reaching_target": int(group["reached_target"].sum()),
           "mean_epoch_seconds": group["mean_epoch_seconds"].mean()}
    columns = [c for c in problem.columns() if f"final_{c}" in group]
    bounds = {"final": (primary.low, primary.high), "best": (primary.low, primary.high),
              "epochs_to_target": POSITIVE, "seconds_to_target": POSITIVE,
              **{f"{kind}_{c}": problem.bounds(c) for c in columns for kind in ("final", "best")}}
    for column, bound in bounds.items():
        s = summarize_values(group[column], confidence, bound)
        row.update({column: s["mean"], f"{column}_n": s["n"], f"{column}_std": s["std"],
                    f"{column}_ci_low": s["ci_low"], f"{column}_ci_high": s["ci_high"]})
    return row


def optimizer_summary(seeds: pd.DataFrame, problems: dict[str, StudyProblem],
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


def problems_table(plan: Plan) -> pd.DataFrame:
    """One row per problem of the plan, as its settings["problems"] record it: problem, dataset,
    data_source, model, kind, primary, higher_is_better, target, title, runs (its training runs in the
    plan); a key the record lacks is None."""
    rows = []
    for name, entry in plan.settings["problems"].items():
        rows.append({"problem": name, **{k: entry.get(k) for k in ("dataset", "data_source", "model", "kind",
                                                                   "primary", "higher_is_better", "target",
                                                                   "title")},
                     "runs": sum(run.problem == name for run in plan.train_runs)})
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


def runs_table(train_runs: list[TrainRun]) -> pd.DataFrame:
    """One row per run of the plan: the settings its run.json recorded (what actually ran) and whether they
    match the config's spec for it (`differences` lists each key that does not)."""
    rows = []
    for planned in train_runs:
        info = json.loads(Path(planned.file("run.json")).read_text())
        spec = info["spec"]
        recorded = {k: v for k, v in spec.items() if k in planned.spec}
        # As the run store compares them (a plug-in's folder is no difference: a run fetched from another study)
        differences = _differences(comparable(recorded), comparable(planned.spec))
        rows.append({**run_identity(spec), "class": spec["optimizer"]["class"],
                     "code": code_label(spec["optimizer"].get("code")),
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


# ---------------------------------------------------------------- writing
def write_table(frame: pd.DataFrame, out_dir: Path, name: str) -> None:
    """CSV for people, Parquet for machines (optimbench.files.table_files names both), written atomically."""
    write_csv(out_dir / f"{name}.csv", frame)
    with atomic_path(out_dir / f"{name}.parquet") as tmp:
        frame.to_parquet(tmp, index=False)


def write_tables(tables: dict[str, pd.DataFrame], out_dir, names) -> dict[str, pd.DataFrame]:
    """Write a stage's tables, exactly those `names` (optimbench.files: TRAIN_TABLES, ...) that its rule
    declares, in that order; returns them in that order.

    Raises:
        ValueError: the tables are not exactly `names` (a table the rule would not know of, or one missing).
    """
    if set(tables) != set(names) or len(tables) != len(names):
        raise ValueError(f"tables {sorted(tables)} are not the stage's {sorted(names)} (optimbench.files)")
    for name in names:
        write_table(tables[name], Path(out_dir), name)
    return {name: tables[name] for name in names}


def _seed_tables(runs: list[TrainRun], problems: dict[str, StudyProblem]):
    """(wide epochs scored for divergence, seed_summary) of some runs of the plan."""
    wide = load_runs([run.dir for run in runs], problems)
    return wide, per_seed_summary(wide, problems)


def aggregate_train(plan: Plan, out_dir) -> dict[str, pd.DataFrame]:
    """Every training table (optimbench.files.TRAIN_TABLES) from the training runs of `plan`
    (optimbench.plan.read_plan), each problem scored in its own metrics (Plan.problems); written to
    `out_dir` as CSV and Parquet and returned by name."""
    problems, confidence = plan.problems, plan.confidence
    wide, seeds = _seed_tables(plan.train_runs, problems)
    long = long_table(wide, problems)
    tables = {"problems": problems_table(plan), "runs": runs_table(plan.train_runs),
              "epochs_long": long, "epoch_stats": epoch_stats(long, problems, confidence), "seed_summary": seeds,
              "optimizer_summary": optimizer_summary(seeds, problems, confidence),
              "article_claims": article_claims(seeds, problems, confidence),
              **performance_tables(seeds, problems, confidence),
              "cost": plan_cost(plan.train_runs, plan.settings["gpu_share"]),
              "focus": focus_table(seeds, problems, plan.settings.get("focus"), confidence)}
    return write_tables(tables, out_dir, TRAIN_TABLES)


def aggregate_descent(plan: Plan, out_dir) -> dict[str, pd.DataFrame]:
    """The descent tables (optimbench.files.DESCENT_TABLES) from the descent runs of `plan`: every run's
    summary.csv row, and the article runs' reproduction table; a study without descent runs (`descent:
    {groups: []}`) gets both tables empty."""
    summaries = [read_table(path) for path in plan.descent_files("summary.csv")]  # one per job, a row per run
    runs = pd.concat(summaries, ignore_index=True) if summaries else pd.DataFrame(columns=list(DESCENT_SUMMARY_COLUMNS))
    return write_tables({"descent_runs": runs, "descent_reproduction": descent_reproduction(runs)}, out_dir,
                        DESCENT_TABLES)


def aggregate_tune(plan: Plan, out_dir) -> dict[str, pd.DataFrame]:
    """The tuning stage's tables (SPEC §2.8; optimbench.files.TUNE_TABLES), per problem: every trial, each
    selection (with a warning when it sits at the edge of its range) and the budget curves
    (optimbench.tune.selection_tables), the final runs' tables and claims with each final's selection
    applied to its planned spec, and the two rankings side by side (optimbench.tune.rankings, against the
    optimizer_summary that aggregate_train wrote to `out_dir`)."""
    problems, confidence = plan.problems, plan.confidence
    chosen = tune.read_selections(plan)
    finals = [dataclasses.replace(run, spec=apply_selection(run.spec, chosen[run.problem][run.optimizer]))
              for run in plan.tune.finals]
    _, seeds = _seed_tables(finals, problems)
    summary = optimizer_summary(seeds, problems, confidence)
    default = read_table(Path(out_dir) / "optimizer_summary.parquet")
    tables = {**tune.selection_tables(plan, chosen), "tuned_runs": runs_table(finals), "tuned_seed_summary": seeds,
              "tuned_optimizer_summary": summary, "tuned_claims": article_claims(seeds, problems, confidence),
              "rankings": tune.rankings(default, summary),
              "tuned_focus": focus_table(seeds, problems, plan.settings.get("focus"), confidence)}  # tuned vs tuned
    return write_tables(tables, out_dir, TUNE_TABLES)


STAGES = {"train": aggregate_train, "descent": aggregate_descent, "tune": aggregate_tune}


def main(argv=None) -> None:
    """`python -m optimbench.aggregate {train,descent,tune} --plan plan.json --out tables/`."""
    parser = argparse.ArgumentParser(description="Aggregate the training, descent or tuning runs of a study.")
    parser.add_argument("stage", choices=list(STAGES))
    parser.add_argument("--plan", required=True, help="the study's plan.json (the `plan` rule writes it)")
    parser.add_argument("--out", required=True, help="tables folder")
    args = parser.parse_args(argv)
    tables = STAGES[args.stage](read_plan(args.plan), args.out)
    for name, frame in tables.items():
        print(f"{args.out}/{name}: {len(frame)} rows")


if __name__ == "__main__":
    main()
