"""Text the report computes from the tables (no hard-coded verdicts), the figures it shows, and the report's
build steps.

The study has several test problems, each with its own primary metric and direction (accuracy: higher is
better; negative ELBO, perplexity: lower is better). Every helper that speaks of a metric takes the
problem's primary metric as the plan gives it (optimbench.runs.StudyProblem.primary, an
optimbench.metrics.Metric) and names it so ("test negative ELBO (lower is better)"), never "accuracy"
unless it is. Tables are the contract's (issue 19): optimizer_summary's `final`, `final_ci_low`, ... are
the primary metric; `problem_ranks`, `rank_summary`, `profile_score` come from optimbench.performance.

optimbench.sections assembles these sentences and figures into the notebook's sections; optimbench.render
runs the notebook (report/study.ipynb) with papermill and exports it to HTML.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from optimbench import labels
from optimbench.compare import as_list, place_words, sharing
from optimbench.cost import memory_by_problem, projected_device_hours
from optimbench.files import ACKLEY_VIEWS, descent_figure_paths, train_figure_stems, tune_figure_files
from optimbench.labels import data_words
from optimbench.metrics import FAILED_FACTOR, Metric
from optimbench.runs import StudyProblem, TuneStage
from optimbench.search import criterion_label

# The cross-problem measures (optimbench.performance.PERFORMANCE_MEASURES) in words; HEADLINE is the one the
# answer leads with: the final primary metric, what each problem's answer ranks by, so the two agree. Time and
# epochs to target depend on the target chosen, and seconds on the timing noise of a shared machine.
MEASURES = {"metric": "final primary metric", "time": "seconds to target", "epochs": "epochs to target"}
HEADLINE = "metric"


def _ci(low, high) -> str:
    if pd.notna(low) and pd.notna(high):
        return f"[{labels.number(low)}, {labels.number(high)}]"
    return "(fewer than 2 completed seeds: no interval)"


def for_problem(frame: pd.DataFrame, problem: str) -> pd.DataFrame:
    """The rows of one problem (a table without a `problem` column is taken whole)."""
    return frame[frame["problem"] == problem] if "problem" in frame else frame


def metric_phrase(metric: Metric) -> str:
    """"test negative ELBO, lower is better"."""
    return f"{labels.metric_label(metric.name)}, {labels.direction(metric.higher_is_better)}"


def study_heading(runs: pd.DataFrame, source: str = "") -> str:
    """What the training runs used, from what they recorded: data set (with its `source`: data_words), model,
    width, images (the first run's; pass one problem's runs)."""
    if runs.empty:
        return "no training runs"
    first = runs.iloc[0]
    images = ""
    if pd.notna(first.get("train_images")) and pd.notna(first.get("test_images")):
        images = f", {int(first['train_images']):,} training / {int(first['test_images']):,} test examples"
    return f"{data_words(first['dataset'], source)}, {first['model']} (width {first['width']}{images})"


def problem_title(problem: StudyProblem) -> str:
    """A problem as the report names it: "digits-resnet18 (digits (CIFAR-10 format), resnet18_cifar at width 8)";
    the plan's title when the problem records no data set."""
    if not problem.dataset:
        return problem.title
    width = f" at width {problem.width}" if problem.width else ""
    return f"{problem.name} ({data_words(problem.dataset, problem.data_source)}, {problem.model}{width})"


def default_title(problems: dict[str, StudyProblem], optimizers, functions=()) -> str:
    """The report's title when report.title is null: what the study compared, on what."""
    data = list(dict.fromkeys(data_words(p.dataset, p.data_source) for p in problems.values() if p.dataset))
    names = ", ".join(problems) + (f" ({'; '.join(data)})" if data else "")
    names_of = ", ".join(f.capitalize() for f in functions)
    also = f" and the {names_of} function{'s' if len(functions) > 1 else ''}" if functions else ""
    count = f"{len(optimizers)} optimizer{'' if len(optimizers) == 1 else 's'}"
    return f"optimbench: {count} on {names}{also}"


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def ran_sentence(runs: pd.DataFrame) -> str:
    """What ran, from the runs table (what each run.json recorded): problems × optimizers × seeds, the runs and
    their epochs (per problem when they differ)."""
    if runs.empty:
        return "**What ran**: no training runs."
    counts = [runs[c].nunique() for c in ("problem", "optimizer", "seed")]
    epochs = runs.groupby("problem", sort=False)["epochs"].agg(lambda e: sorted(set(int(x) for x in e)))
    if len({tuple(e) for e in epochs}) == 1:
        each = " or ".join(map(str, epochs.iloc[0]))
        of = f"of {each} epoch{'' if epochs.iloc[0] == [1] else 's'} each"
    else:
        of = "of " + ", ".join(f"{' or '.join(map(str, e))} epoch{'' if e == [1] else 's'} ({p})"
                               for p, e in epochs.items())
    return (f"**What ran**: {_count(counts[0], 'problem')} × {_count(counts[1], 'optimizer')} × "
            f"{_count(counts[2], 'seed')} = {len(runs)} training runs {of}, as their run.json recorded.")


def _places(summary: pd.DataFrame, row) -> str:
    """"place 1" or "places 1–3 (with Adam, AdamW)": the places the procedure allows (place_low/place_high)."""
    if "place_low" not in summary:
        return f"rank {int(row.rank)}"
    ranges = {r.optimizer: (int(r.place_low), int(r.place_high)) for r in summary.itertuples()}
    low, high = ranges[row.optimizer]
    word = "place" if low == high else "places"
    return f"{word} {place_words(low, high, sharing(row.optimizer, ranges, _shares(summary)))}"


def _shares(frame: pd.DataFrame) -> dict | None:
    """{optimizer: shares_with} of a table that has the column (compare.unordered's words), else None."""
    return dict(zip(frame["optimizer"], frame["shares_with"].fillna(""))) if "shares_with" in frame else None


def _seed_list(row) -> str:
    """"seed 1 " / "seeds 0, 2 " of a summary row's failed_seeds ("" when the table has none)."""
    seeds = getattr(row, "failed_seeds", "")
    return f"seed{'s' if ',' in str(seeds) else ''} {seeds} " if isinstance(seeds, str) and seeds else ""


def _failed_words(row, metric: Metric) -> str:
    """", **1 failed run** (seed 1; not averaged)"."""
    count = int(getattr(row, "failed", 0) or 0)
    if not count:
        return ""
    seeds = getattr(row, "failed_seeds", "")
    return (f", **{_count(count, 'failed run')}** (seed{'s' if count > 1 else ''} {seeds}; scored "
            f"{labels.number(metric.worst)}, not averaged)")


def ranking(summary: pd.DataFrame, metric: Metric, confidence: float) -> str:
    """The optimizers of one problem in order (fewer failed runs, then the mean final primary metric over the
    completed seeds), each with its interval, seeds, failed runs and the places the comparison procedure
    allows (optimizer_summary: rank, place_low, place_high, final, final_ci_low/high, seeds, failed,
    failed_seeds)."""
    if summary.empty:
        return "No training runs were found."
    lines = []
    for row in summary.sort_values(["rank", "optimizer"]).itertuples():
        n = int(row.seeds) - int(getattr(row, "failed", 0) or 0)
        value = (f"{labels.number(row.final)} {_ci(row.final_ci_low, row.final_ci_high)} over "
                 f"{_count(n, 'completed seed')}" if n else "no completed seed")
        lines.append(f"- {_places(summary, row)}: **{row.optimizer}**: {value}{_failed_words(row, metric)}")
    return (f"Final {metric_phrase(metric)}: mean over the completed seeds with its {confidence:.0%} interval "
            "(Student-t, clipped to the metric's range); places shared where the comparisons cannot order them:\n\n"
            + "\n".join(lines))


def _first_place(summary: pd.DataFrame) -> tuple[list[str], str]:
    """(the optimizers that can be first, their shared places in words)."""
    ordered = summary.sort_values(["rank", "optimizer"])
    if "place_low" not in ordered:  # a table without places: the first and those not separated from it
        tied = ordered[(ordered["rank"] == 1) | ~ordered["separated_from_best"].astype(bool)]["optimizer"].tolist()
        return tied, place_words(1, len(tied))
    first = ordered[ordered["place_low"] == 1]
    return first["optimizer"].tolist(), place_words(1, int(ordered.loc[ordered["place_low"] == 1, "place_high"].max()))


def problem_answer(summary: pd.DataFrame, title: str, metric: Metric, confidence: float = 0.95) -> str:
    """One line: the optimizers that can be first on the problem (the procedure orders no one above them), the
    leading one with its interval, and the failed runs."""
    if summary.empty:
        return f"- **{title}**: no training runs were found."
    ordered = summary.sort_values(["rank", "optimizer"])
    best = ordered.iloc[0]
    first, _ = _first_place(summary)
    failed = ordered[ordered.get("failed", pd.Series(0, index=ordered.index)).astype(int) > 0]
    lost = "; failed runs: " + ", ".join(f"{r.optimizer} {_seed_list(r).strip()}" for r in failed.itertuples()) \
        if len(failed) else ""
    head = (f"- **{title}** (final {metric_phrase(metric)}; mean over completed seeds, {confidence:.0%} interval): ")
    values = f"{best.optimizer} {labels.number(best.final)} {_ci(best.final_ci_low, best.final_ci_high)}"
    if len(first) == 1:
        return head + f"first: **{best.optimizer}** ({values}), decided better than every other{lost}."
    return (head + f"no single first: {', '.join(f'**{o}**' for o in first)} can each be first (no comparison "
            f"orders another above them; best mean {values}){lost}.")


def training_conclusion(summary: pd.DataFrame, metric: Metric, confidence: float = 0.95) -> str:
    """A short Markdown conclusion of one problem: who can be first, the last by mean, the best value any
    epoch reached, and the failed runs by seed (every optimizer counted)."""
    if summary.empty:
        return "No training runs were found."
    ordered = summary.sort_values(["rank", "optimizer"])
    worst = ordered.iloc[-1]
    first, _ = _first_place(summary)
    name = labels.metric_label(metric.name)
    lead = (f"**{first[0]}** first" if len(first) == 1
            else f"{', '.join(f'**{o}**' for o in first)} can each be first")
    last = "every run failed" if pd.isna(worst.final) else labels.number(worst.final)
    lines = [f"- Final {metric_phrase(metric)}: {lead}; last in order **{worst.optimizer}** ({last})."]
    if "best" in summary and summary["best"].notna().any():
        at_best = summary.sort_values("best", ascending=not metric.higher_is_better).iloc[0]
        lines.append(f"- Best {name} at any epoch (mean over seeds of each run's best epoch): "
                     f"**{at_best.optimizer}** ({labels.number(at_best.best)}).")
    column = "failed" if "failed" in summary else "divergences"
    failed = summary[summary[column] > 0]
    lines.append(f"- Failed runs (diverged, or ending more than {FAILED_FACTOR:g}× worse than their own best epoch; "
                 f"listed, scored {labels.number(metric.worst)}, never averaged): "
                 + (", ".join(f"{r.optimizer} {_seed_list(r)}({int(getattr(r, column))} of {int(r.seeds)})"
                              for r in failed.itertuples()) if len(failed) else "none."))
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
    alts = {"curves": f"{problem_title(problem)}: every training and test metric per epoch",
            "final_metric": f"Final {metric_phrase(metric)}, per optimizer and seed",
            "generalisation_gap": f"Generalisation gap in {labels.metric_label(metric.name)} per epoch",
            "time_to_target": "Seconds of training to " + labels.target_text(metric.name, metric.higher_is_better,
                                                                             problem.target)}
    stems = train_figure_stems([problem.name], Path(figures_dir) / "train")
    return [(Path(f"{stems[problem.name, figure]}.png"), alt) for figure, alt in alts.items()]


def study_figures(figures_dir) -> dict[str, tuple[Path, str]]:
    """{figure: (PNG, alternative text)} of the across-problem figures (files.STUDY_FIGURES): the headline
    profile, every measure's profile, the ranks."""
    stems = train_figure_stems([], Path(figures_dir) / "train")
    alts = {"headline_profile": f"Performance profile by {MEASURES[HEADLINE]}: share of problems within a factor "
                                "tau of the best, per optimizer",
            "performance_profile": "Performance profiles of every measure: share of problems within a factor tau "
                                   "of the best, per optimizer",
            "ranks": "Rank of each optimizer on each problem with its range"}
    return {name: (Path(f"{stems[None, name]}.png"), alt) for name, alt in alts.items()}


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


# ---------------------------------------------------------------- your optimizer against the field
def difference_words(difference: float, higher_is_better: bool) -> str:
    """"higher (better)", "lower (worse)", ...: the direction of a difference of means and what it means."""
    if pd.isna(difference) or difference == 0:
        return "equal"
    higher = difference > 0
    return f"{'higher' if higher else 'lower'} ({'better' if higher == higher_is_better else 'worse'})"


def signed(value: float) -> str:
    """A difference as the report prints it: "+0.0512", "−5.7764" (labels.number with its sign)."""
    return labels.number(value) if pd.isna(value) or value == 0 else (
        f"+{labels.number(value)}" if value > 0 else f"−{labels.number(-value)}")


def _difference(row) -> str:
    """"−8.123 [−9.101, −7.145], lower (better)": a focus row's difference (focus − baseline, the mean over the
    seeds both completed) with its interval at the family's level and what its sign means."""
    interval = (f" [{signed(row.difference_ci_low)}, {signed(row.difference_ci_high)}]"
                if pd.notna(row.difference_ci_low) else " (no interval: fewer than 2 seeds both completed)")
    return f"{signed(row.difference)}{interval}, {difference_words(row.difference, row.higher_is_better)}"


def _seeds_words(row, name: str) -> str:
    """The seed-by-seed count, failed runs and, undecided, the seeds that would settle it."""
    compared = int(row.wins) + int(row.losses)
    parts = [] if compared == 0 else [  # none: not seed by seed (Welch: e.g. a published field's seeds are theirs)
        f"better on {int(row.wins)} of {compared} seeds" if row.wins >= row.losses
        else f"worse on {int(row.losses)} of {compared} seeds"]
    for who, failed in ((name, row.focus_failed), (row.baseline, row.baseline_failed)):
        if isinstance(failed, str) and failed:
            parts.append(f"{who}'s seed {failed} failed (not averaged)")
    if row.verdict == "inconclusive":
        needed = row.seeds_needed
        parts.append(f"about {int(needed)} seeds each would settle a difference this size" if pd.notna(needed)
                     else "no practical number of seeds would settle a difference this small")
    return "; ".join(parts)


def comparison_words(row, name: str, lead: bool = True) -> str:
    """One focus comparison in words: "**better** than Adam: AdaBelief − Adam = −8.123 [...], lower (better), over 3
    paired seeds, p = 0.0021 (Holm 0.013); better on 3 of 3 seeds" (lead False: from "AdaBelief − Adam")."""
    against = {"better": "than", "worse": "than"}.get(row.verdict, "against")
    head = f"**{row.verdict}** {against} {row.baseline}: " if lead else ""
    return (f"{head}{name} − {row.baseline} = {_difference(row)}, over {int(row.pairs)} "
            f"{'paired ' if row.test == 'paired t' else ''}seeds, p = {labels.number(row.p_value, 2)} "
            f"(Holm {labels.number(row.p_adjusted, 2)})" + (f"; {seeds}" if (seeds := _seeds_words(row, name)) else ""))


def _calibrated(row) -> str:
    """A published baseline's note (the focus table's `calibration`, optimbench.calibrate.with_calibration)."""
    note = getattr(row, "calibration", "")
    return f" ({note})" if isinstance(note, str) and note else ""


def focus_lines(focus: pd.DataFrame, problems: dict[str, StudyProblem], confidence: float) -> str:
    """The focus optimizer(s)' verdicts (optimbench.focus.focus_table) per problem: against the best baseline
    first, then every other baseline, each in full (comparison_words); the field and the family named once."""
    if focus.empty:
        return ""
    names = list(dict.fromkeys(focus["focus"]))
    baselines = list(dict.fromkeys(focus["baseline"]))
    lines = []
    for (problem, name), rows in focus.groupby(["problem", "focus"], sort=False):
        title = problem_title(problems[problem]) if problem in problems else problem
        best = rows[rows["best_baseline"].astype(bool)].iloc[0]
        lines.append(f"- **{title}** (final {metric_phrase(problems[problem].primary)}): **{name}** against the "
                     f"best baseline **{best.baseline}** is **{best.verdict}**: {comparison_words(best, name, False)}"
                     f"{_calibrated(best)}.")
        lines += [f"  - {comparison_words(r, name)}{_calibrated(r)}."
                  for r in rows[~rows["best_baseline"].astype(bool)].itertuples()]
    size = int(focus["family_size"].iloc[0])
    who = " and ".join(names)
    return (f"**{who} against the field** (baselines: {', '.join(baselines)}; one family of {size} comparisons: "
            f"{len(names)} × {len(baselines)} baselines × {focus['problem'].nunique()} problems, Holm at "
            f"{1 - confidence:.0%}). Per problem, {who}'s mean final value minus each baseline's over the seeds "
            "both completed, in the metric's unit, with its interval at the family's simultaneous level:\n\n"
            + "\n".join(lines))


# ---------------------------------------------------------------- across problems
def profile_conclusion(scores: pd.DataFrame, n_problems: int, focus=None, measure: str = HEADLINE) -> str:
    """The answer across problems: the performance-profile scores of one measure (profile_score: measure,
    optimizer, score, score_low, score_high, place_low, place_high; AlgoPerf, Dahl et al. 2023 §4.5), best
    first, each with its seed-bootstrap interval and the places the bootstrap allows (shared places named);
    with a focus (a name or a list), its places first."""
    group = scores[scores["measure"] == measure] if len(scores) else scores
    if group.empty:
        return "No performance profile was computed."
    ordered = group.sort_values(["score", "optimizer"], ascending=[False, True]).reset_index(drop=True)
    ranges = ({r.optimizer: (int(r.place_low), int(r.place_high)) for r in ordered.itertuples()}
              if "place_low" in ordered else {r.optimizer: (i + 1, i + 1) for i, r in enumerate(ordered.itertuples())})

    def interval(r) -> str:
        return f" [{labels.number(r.score_low, 2)}, {labels.number(r.score_high, 2)}]" if "score_low" in ordered else ""

    parts = [f"{r.optimizer} {labels.number(r.score, 2)}{interval(r)} "
             f"(place{'' if len(set(ranges[r.optimizer])) == 1 else 's'} {place_words(*ranges[r.optimizer])})"
             for r in ordered.itertuples()]
    lead = ""
    for name in as_list(focus):
        if name in ranges:
            low, high = ranges[name]
            shared = sharing(name, ranges, _shares(ordered))
            where = f"alone in place {low}" if low == high else f"in places {place_words(low, high)}"
            lead += (f"{name} is {where}" + (f", shared with {', '.join(shared)} (the seeds cannot order them)"
                                             if shared else "") + ". ")
    return (f"Performance-profile score by {MEASURES.get(measure, measure)} over the {n_problems} problems "
            "(area under ρ(τ) for 1 ≤ τ ≤ 4, scaled to [0, 1]; higher is better, 1 = the best on every problem; each "
            "problem's cost the mean over completed seeds; in brackets a seed-bootstrap 95 % interval; places across "
            "problems, shared where the bootstrap cannot order two scores, a question apart from each problem's "
            "comparisons): " + lead + ", ".join(parts) + ".")


def other_measures(scores: pd.DataFrame, summary: pd.DataFrame, n_problems: int) -> str:
    """The other measures' scores and the mean rank per optimizer (rank_summary: optimizer, mean_rank, first,
    possibly_first), for the details behind the headline."""
    lines = [f"- {profile_conclusion(scores, n_problems, measure=m)}" for m in MEASURES
             if m != HEADLINE and len(scores) and (scores["measure"] == m).any()]
    if not summary.empty:
        ordered = summary.sort_values(["mean_rank", "optimizer"])
        parts = [f"{r.optimizer} {labels.number(r.mean_rank, 3)} (first alone on {int(r.first)}, possibly first on "
                 f"{int(r.possibly_first)})" for r in ordered.itertuples()]
        lines.append(f"- Mean rank over the {n_problems} problems (1 = best, lower is better; \"possibly first\": no "
                     "other optimizer is decided better there): " + ", ".join(parts) + ".")
    return "\n".join(lines)



def problem_ranks_text(ranks: pd.DataFrame, problems: dict[str, StudyProblem]) -> str:
    """Per problem, the optimizers in order with the places the comparison procedure allows, shared places
    named (problem_ranks: problem, optimizer, rank, rank_low, rank_high; optimbench.performance.rank_table)."""
    if ranks.empty:
        return "No ranks were computed."
    lines = []
    for name, problem in problems.items():
        mine = for_problem(ranks, name).sort_values(["rank", "optimizer"])
        if mine.empty:
            continue
        ranges = {r.optimizer: (int(r.rank_low), int(r.rank_high)) for r in mine.itertuples()}
        parts = [f"{o} {place_words(*ranges[o], sharing(o, ranges, _shares(mine)))}" for o in ranges]
        lines.append(f"- {problem_title(problem)} ({metric_phrase(problem.primary)}): " + ", ".join(parts) + ".")
    return ("Places per problem (1 = best; a range where the comparisons cannot order an optimizer against the "
            "others, the procedure stated at the top):\n\n" + "\n".join(lines))


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


SAME_POINT = 1e-3  # two descent runs "end at the same point" when their final points are this close (Euclidean)


def _same_points(finite: pd.DataFrame) -> list[pd.DataFrame]:
    """Sets of ≥ 2 runs whose final points lie within SAME_POINT of the set's first run (lowest f first)."""
    left, sets = finite.sort_values(["final_f", "group", "method", "gradient"]), []
    while len(left):
        first = left.iloc[0]
        near = np.hypot(left["final_x"] - first["final_x"], left["final_y"] - first["final_y"]) <= SAME_POINT
        if near.sum() > 1:
            sets.append(left[near])
        left = left[~near]
    return sets


def _run_name(r) -> str:
    return f"{r['method']} ({r['gradient']}, {r['group']})"


def descent_finding(runs: pd.DataFrame) -> str:
    """One line per test function: how many runs reached a global minimum, the lowest value and every run that
    ends there (several methods at the same point share it: no single "lowest"), and the other points where
    several runs end together (within SAME_POINT)."""
    if runs.empty:
        return "No descent runs were found."
    lines = []
    for function, group in runs.groupby("function", sort=True):
        finite = group[group["final_f"].notna() & ~group["diverged"].astype(bool)]
        sets = _same_points(finite) if len(finite) and {"final_x", "final_y"} <= set(finite) else []
        best = finite.sort_values(["final_f", "group", "method", "gradient"]).iloc[0] if len(finite) else None
        reached = int(group["reached_minimum"].sum())
        text = f"- {function}: {reached} of {len(group)} runs reached a global minimum"
        if best is not None:
            shared = next((st for st in sets if st.index[0] == best.name), None)
            who = (f"by {_run_name(best)}" if shared is None else
                   "where " + ", ".join(_run_name(r) for _, r in shared.iterrows()) + " all end (the same point)")
            text += f"; lowest value {labels.number(best['final_f'])} {who}"
        for st in sets:
            if best is None or st.index[0] != best.name:
                first = st.iloc[0]
                text += (f"; {', '.join(_run_name(r) for _, r in st.iterrows())} end at the same point "
                         f"({labels.number(first['final_x'])}, {labels.number(first['final_y'])}), f = "
                         f"{labels.number(first['final_f'])}")
        lines.append(text + (f"; {int(group['diverged'].sum())} diverged" if group["diverged"].any() else "") + ".")
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


def _best_of(frame: pd.DataFrame, column: str, metric: Metric):
    """The row with the best `column` in the metric's direction (ties: the first name)."""
    ordered = frame.assign(_by=frame[column] * (-1.0 if metric.higher_is_better else 1.0))
    return ordered.sort_values(["_by", "optimizer"]).iloc[0]


def _images(runs: pd.DataFrame) -> str:
    counts = sorted({int(n) for n in runs["train_images"].dropna()}) if "train_images" in runs else []
    return " or ".join(f"{n:,}" for n in counts)


def tuning_summary(rankings: pd.DataFrame, default_claims: pd.DataFrame, tuned_claims: pd.DataFrame,
                   selection: pd.DataFrame, metric: Metric, default_runs: pd.DataFrame | None = None,
                   tuned_runs: pd.DataFrame | None = None) -> str:
    """What tuning on the validation split changed on one problem, like with like: only the tuned optimizers
    (those with a tuned result in `rankings`: optimizer, final_default, final_tuned and their _ci_low/_ci_high
    intervals), each against its own default runs and the best of them tuned against the best of the same set at
    default settings; the training images of default and tuned runs when they differ (runs tables: train_images);
    the article's claims whose verdict changed, when any was tested both ways; selections at the edge of their
    search range."""
    tuned = rankings[rankings["final_tuned"].notna()] if "final_tuned" in rankings else rankings.iloc[0:0]
    if tuned.empty:
        return "No tuned runs were found."
    names = ", ".join(sorted(tuned["optimizer"]))
    name = labels.metric_label(metric.name)
    best_tuned, best_default = _best_of(tuned, "final_tuned", metric), _best_of(tuned, "final_default", metric)
    tuned_ci = _ci(best_tuned.get("final_ci_low_tuned"), best_tuned.get("final_ci_high_tuned"))
    default_ci = _ci(best_default.get("final_ci_low_default"), best_default.get("final_ci_high_default"))
    lines = [f"- Among the tuned optimizers ({names}), final {metric_phrase(metric)}: best tuned "
             f"**{best_tuned.optimizer}** ({labels.number(best_tuned.final_tuned)} {tuned_ci}); the same optimizers "
             f"at default settings: best **{best_default.optimizer}** ({labels.number(best_default.final_default)} "
             f"{default_ci})"
             + (" — tuning did not change which of them is best." if best_tuned.optimizer == best_default.optimizer
                else " — tuning changed which of them is best.")]
    for row in tuned.sort_values("optimizer").itertuples():
        diff = row.final_tuned - row.final_default
        lines.append(f"- {row.optimizer}: tuned {labels.number(row.final_tuned)} against its default "
                     f"{labels.number(row.final_default)}: {name} {difference_words(diff, metric.higher_is_better)}"
                     f" by {labels.number(abs(diff))} (see the intervals in the table below).")
    if default_runs is not None and tuned_runs is not None and len(default_runs) and len(tuned_runs):
        own = default_runs[default_runs["optimizer"].isin(tuned["optimizer"])]
        before, after = _images(own), _images(tuned_runs)
        if before and after and before != after:
            lines.append(f"- The tuned runs trained on {after} images, the default runs on {before}: tuning holds "
                         "its validation split out of the training set, so part of a difference can come from the "
                         "smaller training set.")
    if not default_claims.empty and not tuned_claims.empty:
        both = default_claims.merge(tuned_claims[["claim", "verdict"]], on="claim", suffixes=("_default", "_tuned"))
        tested = both[(both["verdict_default"] != "not tested") & (both["verdict_tuned"] != "not tested")]
        changed = tested[tested["verdict_default"] != tested["verdict_tuned"]]
        if len(tested):
            lines.append(f"- The article's claims tested both ways: {len(changed)} of {len(tested)} verdicts change "
                         "with tuning" + ("." if changed.empty else ": " + "; ".join(
                             f"{r.claim}: {r.verdict_default} → {r.verdict_tuned}" for r in changed.itertuples())))
    edges = selection[selection["at_edge"].astype(str) != ""] if "at_edge" in selection else selection.iloc[0:0]
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

