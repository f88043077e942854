"""The files the figure writers write (optimbench.plots), named in one place: the rules declare their outputs
from here, the writers write to these stems, and the report finds its figures here. Imports nothing heavy,
so a Snakefile can call it while it parses.

    train_figure_files(plan, "results/figures/train")          # every file plots.train_figures writes
    train_figure_files(["digits-vae"], folder, ("png",))       # or from problem names, one format
    descent_figure_files(["ackley"], "results/figures/descent", ("all_runs",))

A descent run's own trajectory plot is named by the plan (optimbench.runs.DescentRun.figure).
"""

from __future__ import annotations

from pathlib import Path

TRAIN_FIGURES = ("curves", "final_metric", "generalisation_gap", "time_to_target")  # one set per problem
STUDY_FIGURES = ("headline_profile", "performance_profile", "ranks")  # across problems (the first: the answer's)
TUNE_FIGURES = ("sensitivity", "budget_curves", "tuned_final_metric")  # one set per problem
TRAIN_FORMATS = ("png", "svg")
TUNE_FORMATS = ("png",)
ACKLEY_VIEWS = "ackley_views"  # the article's four views of Ackley: one PNG, whatever functions the runs use
DESCENT_FIGURES = {  # figure -> its file in the descent figures folder ({function}: one per function)
    ACKLEY_VIEWS: f"{ACKLEY_VIEWS}.png",
    "all_runs": "{function}_all_runs.png",  # every run on the function's contour plot
    "interactive": "{function}_3d.html",  # the surface with every trajectory, plotly (works offline)
}


def problem_names(plan_or_names) -> list[str]:
    """The problems of a plan (optimbench.plan.Plan: its settings["problems"], in order), or the names given."""
    settings = getattr(plan_or_names, "settings", None)
    return list(settings["problems"]) if settings is not None else list(plan_or_names)


def train_figure_stems(plan_or_names, out_dir) -> dict:
    """{(problem, figure): stem} for each problem's TRAIN_FIGURES (`out_dir/{problem}/{figure}`) and
    {(None, figure): stem} for the STUDY_FIGURES (`out_dir/{figure}`): the one place that names them."""
    out_dir = Path(out_dir)
    stems = {(p, f): out_dir / p / f for p in problem_names(plan_or_names) for f in TRAIN_FIGURES}
    return {**stems, **{(None, f): out_dir / f for f in STUDY_FIGURES}}


def train_figure_files(plan_or_names, out_dir, formats=TRAIN_FORMATS) -> list[Path]:
    """Every file train_figures writes into `out_dir` (the train figures folder), for a plan or a list of
    problem names: what the figures rule declares as its outputs."""
    return [Path(f"{stem}.{fmt}") for stem in train_figure_stems(plan_or_names, out_dir).values() for fmt in formats]


def tune_figure_files(plan_or_names, out_dir, formats=TUNE_FORMATS) -> list[Path]:
    """Every file tune_figures writes into `out_dir`: `out_dir/{problem}/{figure}.png`."""
    return [Path(out_dir) / p / f"{f}.{fmt}" for p in problem_names(plan_or_names) for f in TUNE_FIGURES
            for fmt in formats]


def descent_figure_paths(functions, out_dir) -> dict:
    """{(None, ACKLEY_VIEWS): png} and, per test function of the descent runs (Plan.descent_functions()),
    {(function, "all_runs"): png, (function, "interactive"): html}, in `out_dir` (the descent figures folder)."""
    out_dir = Path(out_dir)
    paths = {(None, ACKLEY_VIEWS): out_dir / DESCENT_FIGURES[ACKLEY_VIEWS]}
    for function in functions:
        for figure in ("all_runs", "interactive"):
            paths[function, figure] = out_dir / DESCENT_FIGURES[figure].format(function=function)
    return paths


def descent_figure_files(functions, out_dir, figures=tuple(DESCENT_FIGURES)) -> list[Path]:
    """The files descent_figures writes into `out_dir` besides each run's own plot, those of `figures`
    (keys of DESCENT_FIGURES), figure by figure: what the descent figures rule declares as its outputs."""
    paths = descent_figure_paths(functions, out_dir)
    return [paths[key] for figure in figures for key in paths if key[1] == figure]


# ---- tables
# The tables each aggregate stage writes (optimbench.aggregate: aggregate_train, aggregate_descent,
# aggregate_tune), in the order written: `{tables_dir}/{name}.{csv,parquet}`.
TRAIN_TABLES = ("problems", "runs", "epochs_long", "epoch_stats", "seed_summary", "optimizer_summary",
                "article_claims", "performance_ratios", "performance_profile", "profile_score", "problem_ranks",
                "rank_summary", "cost", "focus", "calibration")
DESCENT_TABLES = ("descent_runs", "descent_reproduction")
# A descent job's two tables (optimbench.descent): every run's trajectory, one row per epoch, and one summary
# row per run; the identity columns name the run (a job holds every run of one group on one function).
DESCENT_IDENTITY = ("group", "function", "method", "gradient")
DESCENT_TRAJECTORY_COLUMNS = (*DESCENT_IDENTITY, "epoch", "x", "y", "f", "grad_x", "grad_y", "step")
DESCENT_SUMMARY_COLUMNS = ("function", "method", "gradient", "group", "kind", "lr", "momentum", "h", "tol", "start_x",
                           "start_y", "epochs", "converged", "diverged", "final_x", "final_y", "final_f",
                           "distance_to_minimum", "reached_minimum", "tuned", "lrs_tried")
TUNE_TABLES = ("tune_trials", "tune_selection", "budget_curves", "tuned_runs", "tuned_seed_summary",
               "tuned_optimizer_summary", "tuned_claims", "rankings", "tuned_focus")
TABLE_FORMATS = ("csv", "parquet")  # CSV for people, Parquet for machines
# What the jobs downstream of the aggregate jobs read (their rules' inputs): optimbench.plots.train_figures,
# optimbench.plots.tune_figures, and the report (optimbench.sections, through report_tables).
TRAIN_FIGURE_TABLES = ("epoch_stats", "seed_summary", "optimizer_summary", "performance_profile", "profile_score",
                       "problem_ranks")
TUNE_FIGURE_TABLES = ("tune_trials", "budget_curves", "tuned_optimizer_summary", "tuned_seed_summary")
REPORT_TABLES = ("runs", "optimizer_summary", "article_claims", "cost", "profile_score", "rank_summary",
                 "problem_ranks", "descent_runs", "descent_reproduction", "focus", "calibration")
REPORT_TUNE_TABLES = ("tune_trials", "tune_selection", "budget_curves", "rankings", "tuned_claims", "tuned_runs",
                      "tuned_focus")


def table_files(tables_dir, names, formats=TABLE_FORMATS) -> list[Path]:
    """Every file of the tables `names` (TRAIN_TABLES, ...) in `tables_dir`, table by table: what an
    aggregate rule declares as its outputs."""
    return [Path(tables_dir) / f"{name}.{fmt}" for name in names for fmt in formats]


def report_tables(tuned: bool) -> tuple[str, ...]:
    """The tables the report reads: REPORT_TABLES, and REPORT_TUNE_TABLES when the study tuned."""
    return REPORT_TABLES + (REPORT_TUNE_TABLES if tuned else ())
