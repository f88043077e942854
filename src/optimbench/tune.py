"""The honest comparison (SPEC §2.8): a validation split held out of the training set, a search space and a
trial budget per optimizer, selection on validation only, and budget curves.

- Validation split: stratified and seeded (scikit-learn's `train_test_split`), identical in every process;
  its indices are written once with the data set's checksum and every trial and final run reads them.
- Trials: the `trials` first settings of a sampler over the optimizer's search space: a log/linear grid,
  or a scrambled Sobol sequence (`scipy.stats.qmc.Sobol`, seeded), whose first n points are a prefix of its
  first n + k, so adding trials adds jobs and changes none.
- Selection (validation only; the test set never decides): the best trial by the configured criterion,
  in the direction of the problem's metric it reads (`criterion_metric`); a diverged trial loses to any
  finished one; ties go to the earlier trial.
- Budget curves: the expected best validation score after k of the n trials, exactly (the expected maximum
  of k draws without replacement; Dodge et al. 2019, "Show Your Work", §3).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from optimbench.config import ConfigError
from optimbench.io import write_json



# ---------------------------------------------------------------- selection
def trial_score(metrics: pd.DataFrame, criterion: str, problem) -> float:
    """A trial's score by the criterion on its problem (criterion_metric): the last epoch's value or the best
    epoch's in the metric's direction; NaN when the trial diverged."""
    metric, reduce = criterion_metric(criterion, problem)
    if metrics["diverged"].astype(bool).any():
        return math.nan
    values = metrics[metric.name]
    if reduce == "last":
        return float(values.iloc[-1])
    return float(values.max() if metric.higher_is_better else values.min())


def select(trials: pd.DataFrame, criterion: str, problem) -> pd.Series:
    """The selected trial of one optimizer on one problem: the best score in the direction of the metric the
    criterion reads (criterion_metric), a diverged trial (NaN score) losing to every finished one, ties to
    the earliest trial. `trials`: trial, score, diverged, ...

    Raises:
        ValueError: no trials, or a criterion the problem cannot use (criterion_metric).
    """
    higher = criterion_metric(criterion, problem)[0].higher_is_better
    if trials.empty:
        raise ValueError("no trials to select from")
    key = trials["score"] if higher else -trials["score"]
    ranked = trials.assign(_key=key.fillna(-math.inf)).sort_values(["_key", "trial"], ascending=[False, True])
    return ranked.iloc[0].drop("_key")


def at_edge(trials: pd.DataFrame, selected: pd.Series, space: dict) -> list[str]:
    """The searched kwargs whose selected value is the smallest or largest tried: widen the range there."""
    edges = []
    for name, factor in space.items():
        if name == SCHEDULE_FACTOR or name not in trials:
            continue
        values = trials[name].astype(float)
        if len(values.unique()) > 1 and selected[name] in (values.min(), values.max()):
            edges.append(f"{name}={selected[name]:.3g} ({'lowest' if selected[name] == values.min() else 'highest'} tried)")
    return edges


# ---------------------------------------------------------------- budget curves
def expected_max(values, k: int) -> float:
    """Expected maximum of k values drawn without replacement from `values` (Dodge et al. 2019, §3):
    with v_(1) ≤ ... ≤ v_(n) sorted, E = Σ_{i=k..n} v_(i) · C(i-1, k-1) / C(n, k)."""
    v = np.sort(np.asarray(values, dtype=float))
    n = len(v)
    if not 1 <= k <= n:
        raise ValueError(f"k = {k} must be between 1 and the {n} values")
    weights = np.array([math.comb(i - 1, k - 1) for i in range(k, n + 1)], dtype=float) / math.comb(n, k)
    return float(np.dot(weights, v[k - 1:]))  # only i ≥ k: a -∞ below them has weight 0, not 0 × ∞ = NaN


def budget_curves(trials: pd.DataFrame, criterion: str, problems: dict) -> pd.DataFrame:
    """Per problem × optimizer and k = 1..n: the expected best validation score of k of its n trials, in
    the direction of the criterion's metric on that problem (a diverged trial scores the metric's worst
    value: accuracy 0, loss or negative ELBO ∞), and the optimizers' rank per problem at each k (1 = best).
    `trials`: problem, optimizer, score; `problems`: {name: optimbench.aggregate.ProblemMetrics}."""
    rows = []
    for problem, by_problem in trials.groupby("problem", sort=False):
        metric = criterion_metric(criterion, problems[problem])[0]
        sign = 1.0 if metric.higher_is_better else -1.0
        for optimizer, group in by_problem.groupby("optimizer", sort=False):
            signed = sign * group["score"].fillna(metric.worst).to_numpy(float)
            for k in range(1, len(signed) + 1):
                rows.append({"problem": problem, "optimizer": optimizer, "k": k, "metric": metric.name,
                             "higher_is_better": metric.higher_is_better,
                             "expected_best": sign * expected_max(signed, k)})
    curves = pd.DataFrame(rows)
    goodness = curves["expected_best"] * np.where(curves["higher_is_better"], 1.0, -1.0)
    curves["rank"] = goodness.groupby([curves["problem"], curves["k"]]).rank(ascending=False, method="min")
    return curves


# ---------------------------------------------------------------- a plan's trials
def trials_table(plan: dict, problem: str | None = None, optimizer: str | None = None) -> pd.DataFrame:
    """The trials of a plan (optimbench.study.read_plan), all or one problem's / optimizer's, one row each:
    problem, optimizer, trial, the setting's factors, score by the plan's criterion (criterion_metric),
    diverged, epochs, val_metric (the primary metric on validation), final_val and best_val (its last and
    best epoch's value; like score, NaN when the trial diverged), and final_{col} for every validation
    metric of the problem (the last epoch's, as recorded).

    Raises:
        ValueError: the plan's criterion does not apply to a trial's problem (criterion_metric).
    """
    from optimbench.aggregate import problem_metrics

    criterion, problems = plan["tune"]["select_by"], problem_metrics(plan["settings"])
    rows = []
    for trial in plan["tune"]["trials"]:
        if (problem or trial["problem"], optimizer or trial["optimizer"]) != (trial["problem"], trial["optimizer"]):
            continue
        info = problems[trial["problem"]]
        metrics = pd.read_csv(Path(trial["dir"]) / "metrics.csv")
        rows.append({"problem": trial["problem"], "optimizer": trial["optimizer"], "trial": trial["trial"],
                     **trial["setting"], "score": trial_score(metrics, criterion, info),
                     "diverged": bool(metrics["diverged"].astype(bool).any()), "epochs": len(metrics),
                     "val_metric": validation_primary(info), "final_val": trial_score(metrics, "final_val", info),
                     "best_val": trial_score(metrics, "best_val", info),
                     **{f"final_{c}": metrics[c].iloc[-1] for c in info.columns(("val",)) if c in metrics}})
    return pd.DataFrame(rows)


def write_selection(plan: dict, optimizer: str, out_json, problem: str | None = None) -> dict:
    """Select the optimizer's trial on a problem (validation only) and write what the final runs use,
    atomically. `problem` may be left out when the plan has one problem.

    Raises:
        ValueError: no problem given in a plan of several, or a criterion the problem cannot use.
    """
    from optimbench.aggregate import problem_metrics

    problems = problem_metrics(plan["settings"])
    if problem is None:
        if len(problems) != 1:
            raise ValueError(f"the plan has problems {list(problems)}: name the one to select on")
        problem = next(iter(problems))
    trials = trials_table(plan, problem, optimizer)
    chosen = select(trials, plan["tune"]["select_by"], problems[problem])
    space = plan["tune"]["spaces"][optimizer]
    setting = {name: (chosen[name] if name == SCHEDULE_FACTOR or pd.isna(chosen[name]) else float(chosen[name]))
               for name in space}
    selection = {"problem": problem, "optimizer": optimizer, "trial": int(chosen["trial"]), "setting": setting,
                 "criterion": plan["tune"]["select_by"], "score": None if pd.isna(chosen["score"]) else float(chosen["score"]),
                 "all_diverged": bool(trials["diverged"].all()), "at_edge": at_edge(trials, chosen, space)}
    write_json(out_json, selection)
    return selection


# ---------------------------------------------------------------- entry point
def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="The tuning stage: the validation split, and each optimizer's selection.")
    sub = parser.add_subparsers(dest="stage", required=True)
    split = sub.add_parser("split", help="write the validation split of a canonical data file")
    split.add_argument("--data", required=True, help="canonical .npz (prepare_data's output)")
    split.add_argument("--size", type=int, required=True, help="validation images, held out of the training set")
    split.add_argument("--seed", type=int, required=True, help="seed of the stratified split")
    split.add_argument("--out", required=True, help="split JSON to write (indices and the data's sha256)")
    choose = sub.add_parser("select", help="select an optimizer's trial on validation")
    choose.add_argument("--plan", required=True, help="the study's plan.json, or (what the select rule passes) "
                                                      "the part a selection reads as inline JSON "
                                                      "(optimbench.study.Plan.selection_plan)")
    choose.add_argument("--optimizer", required=True)
    choose.add_argument("--problem", help="the problem (optimbench.problems); needed when the plan has several")
    choose.add_argument("--out", required=True, help="selection JSON to write")
    args = parser.parse_args(argv)
    if args.stage == "split":
        done = write_split(args.data, args.size, args.seed, args.out)
        print(f"{args.out}: {len(done['train_indices'])} training / {len(done['validation_indices'])} validation images")
    else:
        from optimbench.study import read_plan

        plan = json.loads(args.plan) if args.plan.lstrip().startswith("{") else read_plan(args.plan)
        chosen = write_selection(plan, args.optimizer, args.out, args.problem)
        print(f"{args.optimizer}: trial {chosen['trial']} {chosen['setting']} ({chosen['criterion']} {chosen['score']})"
              + (f"; at the edge of the range: {chosen['at_edge']}" if chosen["at_edge"] else ""))


if __name__ == "__main__":
    main()
