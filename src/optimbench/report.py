"""Text the report computes from the tables (no hard-coded verdicts), the figures it shows, and the report's
build steps.

The study has several test problems, each with its own primary metric and direction (accuracy: higher is
better; negative ELBO, perplexity: lower is better). Every helper that speaks of a metric takes the
problem's primary metric as the plan gives it (optimbench.runs.StudyProblem.primary, an
optimbench.metrics.Metric) and names it so ("test negative ELBO (lower is better)"), never "accuracy"
unless it is. Tables are the contract's (issue 19): optimizer_summary's `final`, `final_ci_low`, ... are
the primary metric; `problem_ranks`, `rank_summary`, `profile_score` come from optimbench.performance.

optimbench.sections assembles these sentences and figures into the notebook's sections; `render` runs the
notebook (report/study.ipynb) with papermill and exports it to HTML.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

from optimbench import labels
from optimbench.cost import memory_by_problem, projected_device_hours
from optimbench.files import ACKLEY_VIEWS, descent_figure_paths, train_figure_stems, tune_figure_files
from optimbench.io import atomic_path
from optimbench.metrics import Metric
from optimbench.plan import read_plan
from optimbench.runs import StudyProblem, TuneStage
from optimbench.search import criterion_label

# nbconvert template folder: JupyterLab's HTML without scripts from CDNs (the report works offline).
TEMPLATES = Path(__file__).resolve().parents[2] / "report" / "templates"
MEASURES = {"time": "time to target", "metric": "final primary metric"}


def _ci(low, high) -> str:
    if pd.notna(low) and pd.notna(high):
        return f"[{labels.number(low)}, {labels.number(high)}]"
    return "(one seed: no interval)"


def for_problem(frame: pd.DataFrame, problem: str) -> pd.DataFrame:
    """The rows of one problem (a table without a `problem` column is taken whole)."""
    return frame[frame["problem"] == problem] if "problem" in frame else frame


def metric_phrase(metric: Metric) -> str:
    """"test negative ELBO, lower is better"."""
    return f"{labels.metric_label(metric.name)}, {labels.direction(metric.higher_is_better)}"


def study_heading(runs: pd.DataFrame) -> str:
    """What the training runs used, from what they recorded: data set, model, width, images (the first
    run's; pass one problem's runs)."""
    if runs.empty:
        return "no training runs"
    first = runs.iloc[0]
    images = ""
    if pd.notna(first.get("train_images")) and pd.notna(first.get("test_images")):
        images = f", {int(first['train_images']):,} training / {int(first['test_images']):,} test examples"
    return f"{first['dataset']}, {first['model']} (width {first['width']}{images})"


def ranking(summary: pd.DataFrame, metric: Metric, confidence: float) -> str:
    """The ranking of one problem by its mean final primary metric in the metric's direction, each with
    its interval, seeds and divergences, and whether the seeds separate it from the best
    (optimizer_summary: rank, final, final_ci_low, final_ci_high, seeds, divergences, separated_from_best)."""
    if summary.empty:
        return "No training runs were found."
    worst = labels.number(metric.worst)
    lines = []
    for row in summary.sort_values(["rank", "optimizer"]).itertuples():
        diverged = f", **{row.divergences} diverged** (scored {worst})" if row.divergences else ""
        separated = "" if row.rank == 1 else (" — below the best" if row.separated_from_best
                                              else " — not separated from the best by these seeds")
        lines.append(f"- rank {int(row.rank)}: **{row.optimizer}**: {labels.number(row.final)} "
                     f"{_ci(row.final_ci_low, row.final_ci_high)} over {row.seeds} seed(s){diverged}{separated}")
    return (f"Final {metric_phrase(metric)}: mean over seeds with its {confidence:.0%} interval "
            "(Student-t, clipped to the metric's range):\n\n" + "\n".join(lines))


def problem_answer(summary: pd.DataFrame, title: str, metric: Metric) -> str:
    """One line: the problem's best optimizer by its primary metric, with its interval, and the optimizers
    the seeds do not separate from it."""
    if summary.empty:
        return f"- **{title}**: no training runs were found."
    ordered = summary.sort_values(["rank", "optimizer"])
    best = ordered.iloc[0]
    tied = ordered[(ordered["rank"] > 1) & ~ordered["separated_from_best"].astype(bool)]["optimizer"].tolist()
    return (f"- **{title}** (final {metric_phrase(metric)}): best **{best.optimizer}** "
            f"({labels.number(best.final)} {_ci(best.final_ci_low, best.final_ci_high)})"
            + (f"; not separated from it by the seeds: {', '.join(tied)}." if tied
               else "; separated from every other."))


def claims_summary(claims: pd.DataFrame, titles: dict | None = None) -> str:
    """How many of the article's claims hold, are contradicted or are inconclusive, on which problem (its
    title from `titles`, else its name), then each verdict."""
    if claims.empty:
        return "No claims were checked."
    counts = claims["verdict"].value_counts()
    head = ", ".join(f"{counts.get(v, 0)} {v}" for v in ("holds", "contradicted", "inconclusive", "not tested"))
    judged = [(titles or {}).get(p, p) for p in dict.fromkeys(claims["problem"])] if "problem" in claims else []
    on = f" (judged on {', '.join(judged)})" if judged else ""
    lines = [f"- *{row.verdict}*: {row.claim}" for row in claims.itertuples()]
    return f"The article's {len(claims)} claims{on}: {head}.\n\n" + "\n".join(lines)


def training_conclusion(summary: pd.DataFrame, metric: Metric, confidence: float = 0.95) -> str:
    """A short Markdown conclusion of one problem: best and worst optimizer by the final primary metric with
    their intervals, the best value any epoch reached, and divergences (every optimizer counted)."""
    if summary.empty:
        return "No training runs were found."
    ordered = summary.sort_values(["rank", "optimizer"])
    best, worst = ordered.iloc[0], ordered.iloc[-1]
    tied = ordered[(ordered["rank"] > 1) & ~ordered["separated_from_best"].astype(bool)]["optimizer"].tolist()
    name = labels.metric_label(metric.name)
    lines = [f"- Best mean final {metric_phrase(metric)}: **{best.optimizer}** ({labels.number(best.final)} "
             f"{_ci(best.final_ci_low, best.final_ci_high)} at {confidence:.0%}, {int(best.seeds)} seed(s))"
             + (f"; the seeds do not separate it from {', '.join(tied)}" if tied else "")
             + f". Worst: **{worst.optimizer}** ({labels.number(worst.final)})."]
    if "best" in summary and summary["best"].notna().any():
        at_best = summary.sort_values("best", ascending=not metric.higher_is_better).iloc[0]
        lines.append(f"- Best {name} at any epoch (mean over seeds of each run's best epoch): "
                     f"**{at_best.optimizer}** ({labels.number(at_best.best)}).")
    diverged = summary[summary["divergences"] > 0]
    lines.append(f"- Diverged runs (each scored {labels.number(metric.worst)} in {name} from the epoch it "
                 "diverged): " + (", ".join(f"{r.optimizer} ({int(r.divergences)} of {int(r.seeds)})"
                                            for r in diverged.itertuples()) if len(diverged) else "none."))
    return "\n".join(lines)


def problem_intro(problem: StudyProblem) -> str:
    """What a problem section shows: its primary metric, direction, target and the divergence policy."""
    metric = problem.primary
    target = labels.target_text(metric.name, metric.higher_is_better, problem.target)
    return (f"Primary metric: **{metric_phrase(metric)}**; target: {target}. Mean over seeds, with confidence "
            "intervals across seeds (bands). Test metrics are computed without augmentation. A diverged seed "
            f"scores {labels.number(metric.worst)} in {labels.metric_label(metric.name)} from the epoch "
            "it diverged, and never reaches the target.")


def summary_columns(summary: pd.DataFrame) -> list[str]:
    """The optimizer_summary columns a problem section shows: rank, the primary metric with its interval,
    the best epoch, time to target, then every other final_{col} mean (those of the table)."""
    wanted = ["rank", "optimizer", "seeds", "divergences", "metric", "final", "final_ci_low", "final_ci_high",
              "separated_from_best", "best", "runs_reaching_target", "epochs_to_target", "epochs_to_target_ci_low",
              "epochs_to_target_ci_high", "seconds_to_target", "mean_epoch_seconds"]
    extra = [c for c in summary.columns if c.startswith("final_") and not c.startswith("final_ci")
             and not c.endswith(("_n", "_std", "_ci_low", "_ci_high"))]
    return [c for c in wanted if c in summary] + extra


def train_figures(figures_dir, problem: StudyProblem) -> list[tuple[Path, str]]:
    """(PNG, alternative text) of one problem's training figures, named by optimbench.files."""
    metric = problem.primary
    alts = {"curves": f"{problem.title}: every training and test metric per epoch",
            "final_metric": f"Final {metric_phrase(metric)}, per optimizer and seed",
            "generalisation_gap": f"Generalisation gap in {labels.metric_label(metric.name)} per epoch",
            "time_to_target": "Seconds of training to " + labels.target_text(metric.name, metric.higher_is_better,
                                                                             problem.target)}
    stems = train_figure_stems([problem.name], Path(figures_dir) / "train")
    return [(Path(f"{stems[problem.name, figure]}.png"), alt) for figure, alt in alts.items()]


def study_figures(figures_dir) -> list[tuple[Path, str]]:
    """(PNG, alternative text) of the across-problem figures: performance profiles, ranks."""
    stems = train_figure_stems([], Path(figures_dir) / "train")
    return [(Path(f"{stems[None, 'performance_profile']}.png"),
             "Performance profiles: fraction of problems within a factor tau of the best, per optimizer"),
            (Path(f"{stems[None, 'ranks']}.png"), "Rank of each optimizer on each problem with its range")]


def tune_figures(figures_dir, problem: StudyProblem, select_by: str) -> list[tuple[Path, str]]:
    """(PNG, alternative text) of one problem's tuning figures, named by optimbench.files."""
    criterion, _ = criterion_label(select_by, problem.primary.name, problem.higher_is_better)
    alts = {"sensitivity": f"Sensitivity: {criterion} of every trial",
            "budget_curves": f"Expected best {criterion} after k trials",
            "tuned_final_metric": f"Final {metric_phrase(problem.primary)}, tuned settings"}
    return [(path, alts[path.stem]) for path in tune_figure_files([problem.name], Path(figures_dir) / "tune")]


def descent_figures(figures_dir, functions) -> dict:
    """The descent figures of the report by optimbench.files.descent_figure_paths' keys: {(None,
    ACKLEY_VIEWS): (PNG, alt), (function, "all_runs"): (PNG, alt), (function, "interactive"): HTML file}."""
    paths = descent_figure_paths(functions, Path(figures_dir) / "descent")
    alts = {ACKLEY_VIEWS: "The Ackley function: scatter, contours, 3-D contour lines and surface",
            "all_runs": "Every descent run on the {function} function"}
    return {(function, kind): path if kind == "interactive" else (path, alts[kind].format(function=function))
            for (function, kind), path in paths.items()}


# ---------------------------------------------------------------- across problems
def profile_conclusion(scores: pd.DataFrame, summary: pd.DataFrame, n_problems: int) -> str:
    """The answer across problems: each measure's performance-profile scores (profile_score: measure,
    optimizer, score; AlgoPerf, Dahl et al. 2023 §4.5) best first, and the mean rank per optimizer
    (rank_summary: optimizer, mean_rank, first, possibly_first, problems)."""
    if scores.empty:
        return "No performance profile was computed."
    lines = []
    for measure, group in scores.groupby("measure", sort=False):
        ordered = group.sort_values(["score", "optimizer"], ascending=[False, True])
        parts = [f"{f'**{r.optimizer}**' if i == 0 else r.optimizer} {r.score:.2f}"
                 for i, r in enumerate(ordered.itertuples())]
        lines.append(f"- Performance-profile score by {MEASURES.get(measure, measure)} (area under ρ(τ) for "
                     f"1 ≤ τ ≤ 4, scaled to [0, 1]; 1 = the best on every problem): " + ", ".join(parts) + ".")
    if not summary.empty:
        ordered = summary.sort_values(["mean_rank", "optimizer"])
        parts = [f"{f'**{r.optimizer}**' if i == 0 else r.optimizer} {r.mean_rank:.2f} (first on {int(r.first)}, "
                 f"possibly first on {int(r.possibly_first)})" for i, r in enumerate(ordered.itertuples())]
        lines.append(f"- Mean rank over the {n_problems} problems (1 = best): " + ", ".join(parts) + ".")
    return "\n".join(lines)


def problem_ranks_text(ranks: pd.DataFrame, problems: dict[str, StudyProblem]) -> str:
    """Per problem, the optimizers in rank order with the ranks their seeds allow where that is more than
    one (problem_ranks: problem, optimizer, rank, rank_low, rank_high; optimbench.performance.rank_table)."""
    if ranks.empty:
        return "No ranks were computed."
    lines = []
    for name, problem in problems.items():
        mine = for_problem(ranks, name).sort_values(["rank", "optimizer"])
        if mine.empty:
            continue
        parts = [f"{r.optimizer} {int(r.rank)}" + (f" (could be {int(r.rank_low)}–{int(r.rank_high)})"
                                                   if r.rank_low != r.rank_high else "") for r in mine.itertuples()]
        lines.append(f"- {problem.title} ({metric_phrase(problem.primary)}): "
                     + ", ".join(parts) + ".")
    return ("Rank per problem (1 = best; in parentheses the ranks the seeds allow: pairwise one-sided Welch "
            "tests):\n\n" + "\n".join(lines))


# ---------------------------------------------------------------- descent, cost, tuning
def descent_conclusion(reproduction: pd.DataFrame) -> str:
    """What the article's epoch counts measured: as-printed against the correct central gradient."""
    if reproduction.empty or "epochs_as-printed" not in reproduction:
        return "No article descent runs were found."
    lines = []
    for _, d in reproduction.iterrows():
        parts = [f"{d[f'epochs_{g}']:.0f} epochs with the {name} gradient (reached the minimum: "
                 f"{d[f'reached_minimum_{g}']})"
                 for g, name in (("as-printed", "as-printed"), ("central", "correct central"))
                 if f"epochs_{g}" in d]
        lines.append(f"- **{d['method']}** on {d['function']}: " + "; ".join(parts) + ".")
    return "\n".join(lines)


def descent_finding(runs: pd.DataFrame) -> str:
    """One line per test function: which optimizer run ended lowest, and how many reached a global minimum."""
    if runs.empty:
        return "No descent runs were found."
    lines = []
    for function, group in runs.groupby("function", sort=True):
        finite = group[group["final_f"].notna() & ~group["diverged"].astype(bool)]
        best = finite.sort_values("final_f").iloc[0] if len(finite) else None
        reached = int(group["reached_minimum"].sum())
        lines.append(f"- {function}: {reached} of {len(group)} runs reached a global minimum"
                     + (f"; lowest value {best['final_f']:.4g} by {best['method']} ({best['gradient']}, "
                        f"{best['group']})" if best is not None else "")
                     + (f"; {int(group['diverged'].sum())} diverged" if group["diverged"].any() else "") + ".")
    return "\n".join(lines)


def mismatch_warning(runs: pd.DataFrame) -> str:
    """A warning when the recorded runs differ from the configuration (aggregate.runs_table), else ''."""
    if runs.empty or runs["matches_config"].all():
        return ""
    differing = runs[~runs["matches_config"]]
    lines = [f"- {f'{r.problem} ' if 'problem' in differing else ''}{r.optimizer} seed {r.seed}: {r.differences}"
             for r in differing.itertuples()]
    return (f"**Warning: {len(differing)} of {len(runs)} runs were trained with other settings than the "
            "configuration now says.** Everything below shows what the runs recorded (their run.json). "
            "Run the study again (`make study` with this configuration) to train with the new settings.\n\n"
            + "\n".join(lines))


def tuning_intro(stage: TuneStage, problem: StudyProblem, trials: pd.DataFrame) -> str:
    """How one problem's tuned comparison was made: trials per optimizer, sampler, the validation data and
    the criterion in the problem's metric (`stage`: the plan's tune; `trials`: this problem's tune_trials)."""
    criterion, higher = criterion_label(stage.select_by, problem.primary.name, problem.higher_is_better)
    per_optimizer = int(trials.groupby("optimizer").size().max()) if len(trials) else 0
    validation = ("the data set's own validation stream" if problem.kind == "language_model" else
                  f"a stratified validation split of {stage.validation_size} training examples "
                  f"(seed {stage.split_seed})")
    return (f"Each optimizer's search space was tried with {per_optimizer} trials ({stage.sampler} sampler) on "
            f"{validation}; the trial with the best {criterion} ({labels.direction(higher)}) was selected "
            "(diverged trials lose), rerun over the study's seeds, and evaluated once on the test set, which "
            "decided nothing.")


def tuning_summary(rankings: pd.DataFrame, default_claims: pd.DataFrame, tuned_claims: pd.DataFrame,
                   selection: pd.DataFrame, metric: Metric) -> str:
    """Whether tuning on the validation split changed one problem's answer: the best optimizer at default
    and tuned settings by the final primary metric (rankings: optimizer, rank_default, rank_tuned,
    final_default, final_tuned), each of the article's claims whose verdict changed (when the problem has
    claims), and the selections at the edge of their search range."""
    if rankings.empty:
        return "No tuned runs were found."
    tuned = rankings.sort_values(["rank_tuned", "optimizer"]).iloc[0]
    default = rankings.sort_values(["rank_default", "optimizer"]).iloc[0]
    name = labels.metric_label(metric.name)
    lines = [f"- Best after tuning: **{tuned.optimizer}** ({name} {labels.number(tuned.final_tuned)}); at default "
             f"settings: **{default.optimizer}** ({labels.number(default.final_default)}; "
             f"{labels.direction(metric.higher_is_better)})"
             + (" — tuning did not change the winner." if tuned.optimizer == default.optimizer
                else " — tuning changed the winner.")]
    if not default_claims.empty and not tuned_claims.empty:
        both = default_claims.merge(tuned_claims[["claim", "verdict"]], on="claim", suffixes=("_default", "_tuned"))
        tested = both[(both["verdict_default"] != "not tested") & (both["verdict_tuned"] != "not tested")]
        changed = tested[tested["verdict_default"] != tested["verdict_tuned"]]
        lines.append(f"- The article's claims tested both ways: {len(changed)} of {len(tested)} verdicts change with "
                     "tuning" + ("." if changed.empty else ": " + "; ".join(
                         f"{r.claim}: {r.verdict_default} → {r.verdict_tuned}" for r in changed.itertuples()))
                     + (f" ({len(both) - len(tested)} claim(s) name optimizers this tuned study did not run.)"
                        if len(tested) < len(both) else ""))
    edges = selection[selection["at_edge"].astype(str) != ""]
    if len(edges):
        lines.append("- **Selected at the edge of the search range** (widen it): "
                     + "; ".join(f"{r.optimizer} {r.at_edge}" for r in edges.itertuples()))
    return "\n".join(lines)


ARTICLE_STUDY = {"optimizers": 7, "seeds": 3, "epochs": 50}  # the study the article's claims need


def cost_conclusion(cost: pd.DataFrame, dataset: str) -> str:
    """What the study cost in device time (start-up per run and per epoch apart), and what the article's
    whole study would cost at that pace (`dataset`: the problems' data and models, in words)."""
    if cost.empty:
        return "No training runs were found."
    total = cost[cost["optimizer"] == "all"].iloc[0]  # the whole study: every problem
    unit = f"{total['unit']}-hours"
    lines = [f"- This study: **{total['device_seconds'] / 3600:.3f} {unit}** for {int(total['runs'])} runs and "
             f"{int(total['epochs'])} epochs on {total['device']}: {total['startup_device_seconds_per_run']:.1f} "
             f"{total['unit']}-seconds of start-up per run (imports, data, model) and "
             f"{total['device_seconds_per_epoch']:.1f} {total['unit']}-seconds per epoch (median "
             f"{total['samples_per_second']:.0f} training samples/s per run).",
             f"- Each run held {total['share']:g} {total['unit']}(s) "
             "(GPU: train.gpus / train.runs_per_gpu; CPU: its threads)."]
    hours = projected_device_hours(cost, **ARTICLE_STUDY)
    lines.append(f"- At this pace the article's whole study ({ARTICLE_STUDY['optimizers']} optimizers × "
                 f"{ARTICLE_STUDY['seeds']} seeds × {ARTICLE_STUDY['epochs']} epochs, with this model and data "
                 f"({dataset})) would take **{hours:.2f} {unit}** (start-up × runs + per-epoch cost × epochs).")
    return "\n".join(lines + memory_lines(cost))


def memory_lines(cost: pd.DataFrame) -> list[str]:
    """Per problem, its runs' peak host (and GPU) memory beside the memory its jobs asked for, and a warning
    for a problem whose runs exceeded their request (cost.memory_by_problem); none for runs recorded without."""
    memory = memory_by_problem(cost) if "peak_host_mb" in cost else pd.DataFrame()
    lines = []
    for row in memory.itertuples():
        if pd.isna(row.peak_host_mb):
            continue
        gpu = "" if pd.isna(row.peak_gpu_mb) else f", GPU {row.peak_gpu_mb:,.0f} MB"
        asked = "" if pd.isna(row.mem_mb) else f" of the {row.mem_mb:,.0f} MB its jobs asked for"
        over = (f" **{int(row.runs_over_request)} run(s) exceeded their request: raise mem_mb for {row.problem}.**"
                if row.runs_over_request else "")
        lines.append(f"- {row.problem}: peak host memory {row.peak_host_mb:,.0f} MB{asked}{gpu} (max over runs).{over}")
    return lines


def render(notebook, executed, html_path, parameters: dict, title: str | None = None) -> None:
    """Execute the notebook with papermill and export it to self-contained HTML without code, titled `title`."""
    import nbformat
    import papermill

    with atomic_path(executed) as tmp_nb:
        papermill.execute_notebook(str(notebook), str(tmp_nb), parameters=parameters, kernel_name="python3",
                                   progress_bar=False, cwd=Path.cwd())
        if title:  # the HTML's <title> (nbconvert's lab template reads the notebook's metadata.title)
            executed_nb = nbformat.read(tmp_nb, as_version=4)
            executed_nb.metadata["title"] = title
            nbformat.write(executed_nb, tmp_nb)
        with atomic_path(html_path) as tmp_html, open(tmp_html, "wb") as out:
            subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", "--no-input",
                            f"--TemplateExporter.extra_template_basedirs={TEMPLATES}", "--template", "offline",
                            "--stdout", str(tmp_nb)], stdout=out, check=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Execute the report notebook and export it to HTML.")
    parser.add_argument("--notebook", required=True)
    parser.add_argument("--executed", required=True, help="executed .ipynb to write")
    parser.add_argument("--html", required=True, help="HTML report to write")
    parser.add_argument("--parameters", required=True, help="notebook parameters as JSON")
    args = parser.parse_args(argv)
    parameters = json.loads(args.parameters)
    title = None
    if "plan_file" in parameters:
        title = read_plan(parameters["plan_file"]).settings["title"]
    render(args.notebook, args.executed, args.html, parameters, title)
    print(f"report: {args.html}")


if __name__ == "__main__":
    main()
