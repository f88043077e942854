"""The files the figure writers write (optimbench.plots), named in one place: the rules declare their outputs
from here, the writers write to these stems, and the report finds its figures here. Imports nothing heavy,
so a Snakefile can call it while it parses.

    train_figure_files(plan, "results/figures/train")          # every file plots.train_figures writes
    train_figure_files(["digits-vae"], folder, ("png",))       # or from problem names, one format
"""

from __future__ import annotations

from pathlib import Path

TRAIN_FIGURES = ("curves", "final_metric", "generalisation_gap", "time_to_target")  # one set per problem
STUDY_FIGURES = ("performance_profile", "ranks")  # across problems
TUNE_FIGURES = ("sensitivity", "budget_curves", "tuned_final_metric")  # one set per problem
TRAIN_FORMATS = ("png", "svg")
TUNE_FORMATS = ("png",)


def problem_names(plan_or_names) -> list[str]:
    """The problems of a plan (its settings["problems"], in order), or the names given."""
    if isinstance(plan_or_names, dict) and "settings" in plan_or_names:
        return list(plan_or_names["settings"]["problems"])
    return list(plan_or_names)


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
