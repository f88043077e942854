"""Calibration before comparison: does this study's own run of a published setting reproduce the published runs?

For each calibration pair of the plan (published.<source>.calibrate: a published optimizer, e.g. "Adam
[deepobs-v1.1]", and the optimizer of train.optimizers that runs the same setting here) and each problem where both
have runs, every test metric of the problem is compared at the final epoch and at its best epoch: the means across
seeds, each one's interval (stats.mean_interval), and the Welch interval of the difference own − published
(stats.welch_interval, at the study's confidence). The verdict is an equivalence test with margin m = MARGIN ×
|published mean| (two one-sided tests at level 1 − confidence, as the interval of the difference shows them):

- **reproduces**: the interval of the difference lies within ±m (the two agree to within MARGIN);
- **differs**: the interval lies wholly outside ±m (they disagree by more than MARGIN);
- **inconclusive**: otherwise (too few seeds or too much spread to say).

A margin, not "the interval covers 0": with ten seeds of a deterministic problem an interval can be narrower than
any float32 difference between two frameworks, and "no significant difference" is not evidence of agreement.

`calibration_table(seeds, problems, pairs, confidence)` is the aggregate step's `calibration` table;
`verdict_words` the sentence the report puts beside each comparison with a published optimizer.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import yaml

from optimbench import published
from optimbench.io import write_text
from optimbench.runs import StudyProblem
from optimbench.stats import summarize_values, welch_interval
from optimbench.tables import read_table

MARGIN = 0.01  # relative equivalence margin: 1% of the published mean
REPRODUCES, DIFFERS, INCONCLUSIVE = "reproduces", "differs", "inconclusive"
VERDICT_PHRASE = {REPRODUCES: "**reproduces** it", DIFFERS: "**differs** from it",
                  INCONCLUSIVE: "neither reproduces nor differs from it (**inconclusive**)"}
CALIBRATION_COLUMNS = ["problem", "published", "own", "metric", "at", "own_mean", "own_ci_low", "own_ci_high",
                       "published_mean", "published_ci_low", "published_ci_high", "difference", "difference_ci_low",
                       "difference_ci_high", "margin", "verdict", "own_seeds", "published_seeds", "confidence"]


def equivalence(low: float, high: float, margin: float) -> str:
    """The verdict of an interval (low, high) of a difference against ±margin (module docstring)."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return INCONCLUSIVE
    if -margin <= low and high <= margin:
        return REPRODUCES
    if low > margin or high < -margin:
        return DIFFERS
    return INCONCLUSIVE


def _pair_rows(problem: StudyProblem, group: pd.DataFrame, published: str, own: str, confidence: float):
    rows = []
    for column in problem.columns(("test",)):
        metric = problem.metrics[column]
        for at in ("final", "best"):
            values = {name: group.loc[group["optimizer"] == name, f"{at}_{column}"].astype(float)
                      for name in (own, published)}
            mine, theirs = (summarize_values(values[name], confidence, (metric.low, metric.high))
                            for name in (own, published))
            low, high = welch_interval(values[own].dropna(), values[published].dropna(), confidence)
            margin = MARGIN * abs(theirs["mean"])
            rows.append({"problem": problem.name, "published": published, "own": own, "metric": column, "at": at,
                         "own_mean": mine["mean"], "own_ci_low": mine["ci_low"], "own_ci_high": mine["ci_high"],
                         "published_mean": theirs["mean"], "published_ci_low": theirs["ci_low"],
                         "published_ci_high": theirs["ci_high"], "difference": mine["mean"] - theirs["mean"],
                         "difference_ci_low": low, "difference_ci_high": high, "margin": margin,
                         "verdict": equivalence(low, high, margin), "own_seeds": mine["n"],
                         "published_seeds": theirs["n"], "confidence": confidence})
    return rows


def calibration_table(seeds: pd.DataFrame, problems: dict[str, StudyProblem], pairs: dict[str, str],
                      confidence: float = 0.95) -> pd.DataFrame:
    """Per problem, calibration pair ({published label: own optimizer}) where both have runs in `seeds`
    (seed_summary: final_<column>, best_<column>), test metric and `at` (final, best): CALIBRATION_COLUMNS
    (module docstring; difference = own − published in the metric's unit, margin in the same unit). Empty (with
    those columns) without pairs."""
    rows = []
    for name, problem in problems.items():
        group = seeds[seeds["problem"] == name] if len(seeds) else seeds
        for theirs, own in pairs.items():
            if len(group) and {theirs, own} <= set(group["optimizer"]):
                rows += _pair_rows(problem, group, theirs, own, confidence)
    return pd.DataFrame(rows, columns=CALIBRATION_COLUMNS)


def with_calibration(focus: pd.DataFrame, calibration: pd.DataFrame, published) -> pd.DataFrame:
    """The focus table (optimbench.focus.focus_table) with a `calibration` column: beside each comparison with a
    published baseline (`published`: their names), that it is published and whether this study's own run of its
    setting reproduces it (verdict_words, in the row's metric); "" for the study's own baselines."""
    published = set(published)
    notes = [f"compared with the published {r.baseline}; {verdict_words(calibration, r.problem, r.baseline, r.metric)}"
             if r.baseline in published else "" for r in focus.itertuples()]
    return focus.assign(calibration=pd.Series(notes, index=focus.index, dtype=object))


def plan_pairs(settings: dict) -> dict[str, str]:
    """{published label: own optimizer} of every source of a plan's settings["published"]."""
    return {label: own for part in settings.get("published", {}).get("sources", {}).values()
            for label, own in part["calibrate"].items()}


def verdict_words(calibration: pd.DataFrame, problem: str, published: str, metric: str) -> str:
    """The sentence beside a comparison with `published` on `problem`: whether this study's own run of the same
    setting reproduces it in `metric` at the final epoch (with both means), or that it was not calibrated."""
    rows = calibration[(calibration["problem"] == problem) & (calibration["published"] == published)
                       & (calibration["metric"] == metric) & (calibration["at"] == "final")] if len(calibration) else []
    if not len(rows):
        return f"not calibrated: no own run of {published}'s setting on {problem} in this study"
    row = rows.iloc[0]
    return (f"this study's own {row['own']} {VERDICT_PHRASE[row['verdict']]} on {problem} "
            f"(final {metric.replace('_', ' ')} "
            f"{row['own_mean']:.4g} vs {row['published_mean']:.4g}, difference "
            f"[{row['difference_ci_low']:.3g}, {row['difference_ci_high']:.3g}], margin ±{row['margin']:.3g})")


# ---------------------------------------------------------------- `make calibrate`: the study that calibrates
TORCH_FORM = {  # a DeepOBS v1.1 optimizer -> the torch optimizer that runs its update (README: Published baselines)
    "GradientDescentOptimizer": ("SGD", lambda h: {}),
    "MomentumOptimizer": ("SGD", lambda h: {"momentum": float(h["momentum"]), "nesterov": h["use_nesterov"] == "True"}),
    "AdamOptimizer": ("Adam", lambda h: {"betas": [float(h["beta1"]), float(h["beta2"])], "eps": float(h["epsilon"])}),
}


def setting_values(setting: str) -> dict:
    """The key/value pairs of a DeepOBS setting folder's name (`num_epochs__100__batch_size__128__lr__1.e-02`)."""
    parts = setting.split("__")
    return dict(zip(parts[0::2], parts[1::2]))


def preset(problem: str, source: str = "deepobs-v1.1", local_dir: str | None = None) -> dict:
    """The calibration study of one published problem: this study's own SGD, Momentum and Adam (named
    `<short>-deepobs`) at the source's best settings (its manifest's setting folders), its budget (epochs, batch)
    and seeds, and the published runs (read from local_dir, a copy of the source repository, if given; else
    downloaded), paired for the `calibration` table. quadratic_deep runs on 1 CPU thread.

    Raises:
        KeyError: the source has no runs of `problem`.
    """
    origin = published.get(source)
    runs = published.manifest(origin)["runs"][problem]
    optimizers, seeds = {}, set()
    for folder, entry in runs.items():
        values = setting_values(entry["setting"])
        name, extra = TORCH_FORM[folder]
        optimizers[f"{origin.optimizers[folder]}-deepobs"] = {
            "class": name, "kwargs": {"lr": float(values["lr"]), **extra(values)},
            "paper": f"{origin.title}: {folder}'s best setting on {problem}"}
        seeds |= {int(s) for s in entry["seeds"]}
        budget = (int(values["num_epochs"]), int(values["batch_size"]))
    cpu = {"device": "cpu", "threads": 1, "gpus": 0} if problem == "quadratic_deep" else {}
    return {"results_dir": f"results/calibrate-{problem}",
            "report": {"title": f"Calibration: optimbench's SGD, Momentum and Adam against the {origin.title} on "
                                f"{problem}", "focus": None},
            "problems": [problem], "optimizers": optimizers, "descent": {"groups": []}, "tune": {"enabled": False},
            "train": {"epochs": budget[0], "batch_size": budget[1], "seeds": sorted(seeds),
                      "optimizers": list(optimizers), **cpu},
            "published": {source: {"optimizers": list(origin.optimizers.values()), "dir": local_dir,
                                   "calibrate": {o.split("-")[0]: o for o in optimizers}}}}


def markdown(calibration: pd.DataFrame) -> str:
    """The calibration table as Markdown (README, `make calibrate`): one row per pair and metric at the final epoch."""
    lines = ["| problem | published | own | metric | own mean [CI] | published mean [CI] | own − published [CI] | "
             "margin | verdict |", "|---|---|---|---|---|---|---|---|---|"]
    for _, r in calibration[calibration["at"] == "final"].iterrows():
        lines.append(f"| {r['problem']} | {r['published']} | {r['own']} | final {r['metric']} | {r['own_mean']:.4f} "
                     f"[{r['own_ci_low']:.4f}, {r['own_ci_high']:.4f}] | {r['published_mean']:.4f} "
                     f"[{r['published_ci_low']:.4f}, {r['published_ci_high']:.4f}] | {r['difference']:+.4f} "
                     f"[{r['difference_ci_low']:+.4f}, {r['difference_ci_high']:+.4f}] | ±{r['margin']:.3f} | "
                     f"**{r['verdict']}** |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Write a calibration study's preset, or show its table.")
    parser.add_argument("--preset", metavar="PROBLEM", help="write the calibration preset of this DeepOBS problem")
    parser.add_argument("--out", help="the preset file to write (with --preset)")
    parser.add_argument("--dir", help="with --preset: a local copy of the published repository (offline)")
    parser.add_argument("--show", metavar="TABLE", help="print a calibration table (calibration.parquet) as Markdown")
    args = parser.parse_args(argv)
    if args.preset:
        try:
            text = yaml.safe_dump(preset(args.preset, local_dir=args.dir), sort_keys=False)
        except KeyError:
            raise SystemExit(f"--preset {args.preset}: no published runs of it; DeepOBS v1.1 has "
                             f"{', '.join(published.problems_of(published.get('deepobs-v1.1')))}") from None
        write_text(args.out, f"# written by python -m optimbench.calibrate --preset {args.preset}\n{text}")
    if args.show:
        print(markdown(read_table(args.show)))


if __name__ == "__main__":
    main()


# ---------------------------------------------------------------- the report's words on the published field
def published_words(settings: dict, calibration: pd.DataFrame) -> str:
    """The first screen's paragraph on published runs (a plan's settings["published"]): per source what was
    imported and not trained here (optimizers × seeds per problem, their framework, repository, commit, licence),
    then each calibration pair's verdict in the problem's test metrics at the final epoch. "" without any."""
    sources = []
    for part in settings.get("sources", {}).values():
        source, runs = part["source"], part["runs"]
        names = ", ".join(dict.fromkeys(r["optimizer"] for r in runs))
        problems = ", ".join(dict.fromkeys(r["problem"] for r in runs))
        seeds = sorted({r["seed"] for r in runs})
        sources.append(f"**Published runs, not trained here**: {len(runs)} runs of {names} on {problems} (seeds "
                       f"{seeds[0]}–{seeds[-1]}, theirs), imported from the {source['title']} ({source['repository']}"
                       f" at {source['release']}, commit {source['commit'][:7]}, licence {source['licence']}; trained"
                       f" with {source['framework']}). Every table and figure names them with their source in "
                       "brackets.")
    final = calibration[calibration["at"] == "final"] if len(calibration) else calibration
    checks = [f"- Calibration: {row.published}: this study's own {row.own} {VERDICT_PHRASE[row.verdict]} on "
              f"{row.problem} "
              f"(final {row.metric.replace('_', ' ')} {row.own_mean:.4g} vs {row.published_mean:.4g}; own − published "
              f"{row.difference:+.3g} [{row.difference_ci_low:+.3g}, {row.difference_ci_high:+.3g}] at "
              f"{row.confidence:.0%}, margin ±{row.margin:.3g})." for row in final.itertuples()]
    return "\n\n".join(sources + (["\n".join(checks)] if checks else []))
