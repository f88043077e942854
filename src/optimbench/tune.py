"""The honest comparison (SPEC §2.8): selection on validation only, budget curves and the tuning tables.
The validation split is optimbench.split's; the search spaces, samplers and criteria optimbench.search's.

- Selection (validation only; the test set never decides): the best trial by the configured criterion,
  in the direction of the problem's metric it reads (`criterion_metric`); a diverged trial loses to any
  finished one; ties go to the earlier trial.
- Budget curves: the expected best validation score after k of the n trials, exactly (the expected maximum
  of k draws without replacement; Dodge et al. 2019, "Show Your Work", §3).
- Tables (`selection_tables`, `rankings`): every trial, each selection and the budget curves, and the
  default ranking beside the tuned one; optimbench.aggregate.aggregate_tune writes them with the final
  runs' tables.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from optimbench.io import write_json
from optimbench.runs import GROUP_KEYS, SCHEDULE_FACTOR, Plan, StudyProblem, read_plan
from optimbench.search import criterion_metric, validation_primary
from optimbench.split import write_split
from optimbench.tables import read_table


# ---------------------------------------------------------------- selection
def trial_score(metrics: pd.DataFrame, criterion: str, problem: StudyProblem) -> float:
    """A trial's score by the criterion on its problem (criterion_metric): the last epoch's value or the best
    epoch's in the metric's direction; NaN when the trial diverged."""
    metric, reduce = criterion_metric(criterion, problem)
    if metrics["diverged"].astype(bool).any():
        return math.nan
    values = metrics[metric.name]
    if reduce == "last":
        return float(values.iloc[-1])
    return float(values.max() if metric.higher_is_better else values.min())


def select(trials: pd.DataFrame, criterion: str, problem: StudyProblem) -> pd.Series:
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
    for name in space:
        if name == SCHEDULE_FACTOR or "choices" in space[name] or name not in trials:  # ranges only
            continue
        values = trials[name].astype(float)
        if len(values.unique()) > 1 and selected[name] in (values.min(), values.max()):
            end = "lowest" if selected[name] == values.min() else "highest"
            edges.append(f"{name}={selected[name]:.3g} ({end} tried)")
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


def budget_curves(trials: pd.DataFrame, criterion: str, problems: dict[str, StudyProblem]) -> pd.DataFrame:
    """Per problem × optimizer and k = 1..n: the expected best validation score of k of its n trials, in
    the direction of the criterion's metric on that problem (a diverged trial scores the metric's worst
    value: accuracy 0, loss or negative ELBO ∞), and the optimizers' rank per problem at each k (1 = best).
    `trials`: problem, optimizer, score; `problems`: Plan.problems."""
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
def trials_table(plan: Plan, problem: str | None = None, optimizer: str | None = None) -> pd.DataFrame:
    """The trials of a plan (Plan.trials_of), all or one problem's / optimizer's, one row each:
    problem, optimizer, trial, the setting's factors, score by the plan's criterion (criterion_metric),
    diverged, epochs, val_metric (the primary metric on validation), final_val and best_val (its last and
    best epoch's value; like score, NaN when the trial diverged), and final_{col} for every validation
    metric of the problem (the last epoch's, as recorded).

    Raises:
        ValueError: the plan's criterion does not apply to a trial's problem (criterion_metric).
    """
    criterion, problems = plan.tune.select_by, plan.problems
    rows = []
    for trial in plan.trials_of(problem, optimizer):
        info = problems[trial.problem]
        metrics = read_table(trial.file("metrics.csv"))
        rows.append({"problem": trial.problem, "optimizer": trial.optimizer, "trial": trial.trial,
                     **trial.setting, "score": trial_score(metrics, criterion, info),
                     "diverged": bool(metrics["diverged"].astype(bool).any()), "epochs": len(metrics),
                     "val_metric": validation_primary(info), "final_val": trial_score(metrics, "final_val", info),
                     "best_val": trial_score(metrics, "best_val", info),
                     **{f"final_{c}": metrics[c].iloc[-1] for c in info.columns(("val",)) if c in metrics}})
    return pd.DataFrame(rows)


def write_selection(plan: Plan, optimizer: str, out_json, problem: str | None = None) -> dict:
    """Select the optimizer's trial on a problem (validation only) and write what the final runs use,
    atomically: problem, optimizer, trial, setting (the searched factors' values), criterion, score (NaN
    written as null), all_diverged, at_edge. `problem` may be left out when the plan has one problem (the
    select rule passes Plan.selection_plan's JSON, which has one).

    Raises:
        ValueError: no problem given in a plan of several, or a criterion the problem cannot use.
    """
    problems = plan.problems
    if problem is None:
        if len(problems) != 1:
            raise ValueError(f"the plan has problems {list(problems)}: name the one to select on")
        problem = next(iter(problems))
    trials = trials_table(plan, problem, optimizer)
    chosen = select(trials, plan.tune.select_by, problems[problem])
    space = plan.tune.spaces[optimizer]
    setting = {name: (chosen[name] if name == SCHEDULE_FACTOR or pd.isna(chosen[name]) else float(chosen[name]))
               for name in space}
    score = None if pd.isna(chosen["score"]) else float(chosen["score"])
    selection = {"problem": problem, "optimizer": optimizer, "trial": int(chosen["trial"]), "setting": setting,
                 "criterion": plan.tune.select_by, "score": score,
                 "all_diverged": bool(trials["diverged"].all()), "at_edge": at_edge(trials, chosen, space)}
    write_json(out_json, selection)
    return selection


# ---------------------------------------------------------------- tables
def read_selections(plan: Plan) -> dict:
    """{problem: {optimizer: selection}}: every selection JSON of the plan (write_selection's), read back."""
    return {problem: {optimizer: json.loads(Path(path).read_text()) for optimizer, path in paths.items()}
            for problem, paths in plan.tune.selections.items()}


def selection_table(selections: dict) -> pd.DataFrame:
    """One row per problem × optimizer of the selections ({problem: {optimizer: selection}}, read_selections):
    trial, setting (JSON), criterion, score, all_trials_diverged, at_edge (joined by '; ')."""
    return pd.DataFrame([{"problem": problem, "optimizer": optimizer, "trial": chosen["trial"],
                          "setting": json.dumps(chosen["setting"], sort_keys=True), "criterion": chosen["criterion"],
                          "score": chosen["score"], "all_trials_diverged": chosen["all_diverged"],
                          "at_edge": "; ".join(chosen["at_edge"])}
                         for problem, chosen_of in selections.items() for optimizer, chosen in chosen_of.items()])


def selection_tables(plan: Plan, selections: dict) -> dict[str, pd.DataFrame]:
    """The tables of the trials and their selections: tune_trials (trials_table, with `selected` marking
    each selection's trial), tune_selection (selection_table) and budget_curves (by the plan's criterion)."""
    trials = trials_table(plan)
    selection = selection_table(selections)
    picked = set(zip(selection["problem"], selection["optimizer"], selection["trial"]))
    trials["selected"] = [key in picked for key in zip(trials["problem"], trials["optimizer"], trials["trial"])]
    return {"tune_trials": trials, "tune_selection": selection,
            "budget_curves": budget_curves(trials, plan.tune.select_by, plan.problems)}


def rankings(default: pd.DataFrame, tuned: pd.DataFrame) -> pd.DataFrame:
    """The default-hyperparameter ranking beside the tuned one (two optimizer_summary tables of
    optimbench.aggregate), per problem and optimizer: rank, final (the primary metric) with its interval,
    separated_from_best and divergences, each suffixed _default and _tuned; sorted by problem, tuned rank."""
    keys = GROUP_KEYS + ["metric", "higher_is_better"]
    columns = keys + ["rank", "final", "final_ci_low", "final_ci_high", "separated_from_best", "divergences"]
    both = default[columns].merge(tuned[columns], on=keys, how="outer", suffixes=("_default", "_tuned"))
    return both.sort_values(["problem", "rank_tuned", "optimizer"]).reset_index(drop=True)


# ---------------------------------------------------------------- entry point
def main(argv=None) -> None:
    """`python -m optimbench.tune split --data D --size N --seed S --out split.json` (optimbench.split.write_split)
    or `python -m optimbench.tune select --plan P --optimizer O [--problem P] --out selected.json`
    (write_selection; --plan is a plan.json or a plan's inline JSON, optimbench.plan.read_plan)."""
    parser = argparse.ArgumentParser(description="The tuning stage: the validation split, and each optimizer's "
                                                 "selection.")
    sub = parser.add_subparsers(dest="stage", required=True)
    split = sub.add_parser("split", help="write the validation split of a canonical data file")
    split.add_argument("--data", required=True, help="canonical .npz (prepare_data's output)")
    split.add_argument("--size", type=int, required=True, help="validation images, held out of the training set")
    split.add_argument("--seed", type=int, required=True, help="seed of the stratified split")
    split.add_argument("--out", required=True, help="split JSON to write (indices and the data's sha256)")
    choose = sub.add_parser("select", help="select an optimizer's trial on validation")
    choose.add_argument("--plan", required=True, help="the study's plan.json, or (what the select rule passes) "
                                                      "the part a selection reads as inline JSON "
                                                      "(optimbench.plan.Plan.selection_plan)")
    choose.add_argument("--optimizer", required=True)
    choose.add_argument("--problem", help="the problem (optimbench.problems); needed when the plan has several")
    choose.add_argument("--out", required=True, help="selection JSON to write")
    args = parser.parse_args(argv)
    if args.stage == "split":
        done = write_split(args.data, args.size, args.seed, args.out)
        print(f"{args.out}: {len(done['train_indices'])} training / {len(done['validation_indices'])} validation "
              "images")
    else:
        chosen = write_selection(read_plan(args.plan), args.optimizer, args.out, args.problem)
        print(f"{args.optimizer}: trial {chosen['trial']} {chosen['setting']} ({chosen['criterion']} {chosen['score']})"
              + (f"; at the edge of the range: {chosen['at_edge']}" if chosen["at_edge"] else ""))


if __name__ == "__main__":
    main()
