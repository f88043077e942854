"""The demon-paper study rehearsed on CPU at full model and data sizes (config/presets/rehearsal.yaml on top of
demon-paper.yaml; issue 29, item 1): every job finishes, every problem has its tables and figures, every run
records its peak memory, and the report's first screen names each problem's best optimizer.

Minutes (≤ 15 on 2 idle cores), so marked `rehearsal` and left out of `make test` (pyproject's addopts);
`make rehearsal` runs the study into results/rehearsal and then this test on it (OPTIMBENCH_REHEARSAL_WORKDIR);
without that variable the test runs the study itself in a temporary folder.
"""

import json
import os
import re
from pathlib import Path

import pandas as pd
import pytest

from optimbench import files
from optimbench.config import load
from optimbench.plan import missing_runs, read_plan

from helpers import ROOT, snakemake

pytestmark = [pytest.mark.workflow, pytest.mark.rehearsal]

PRESETS = [ROOT / "config" / "presets" / "demon-paper.yaml", ROOT / "config" / "presets" / "rehearsal.yaml"]


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory):
    """(working directory, plan) of the finished rehearsal: make rehearsal's, or one run here."""
    given = os.environ.get("OPTIMBENCH_REHEARSAL_WORKDIR")
    workdir = Path(given) if given else tmp_path_factory.mktemp("rehearsal")
    if not given:
        snakemake(workdir, PRESETS[0], str(PRESETS[1]), "--cores", "2", timeout=3600)  # --configfile A B
    config = load([ROOT / "config.yaml", *PRESETS])
    return workdir, read_plan(workdir / config["results_dir"] / "plan.json")


def test_the_rehearsal_is_the_demon_paper_study_at_full_size(rehearsal):
    workdir, plan = rehearsal
    demon = load([ROOT / "config.yaml", PRESETS[0]])
    assert set(plan.problems) == set(demon["problems"])
    assert {r.optimizer for r in plan.train_runs} == set(demon["train"]["optimizers"])
    assert max(len({r.seed for r in plan.train_runs if r.problem == p}) for p in plan.problems) >= 2
    assert len(plan.tune.trials) == 2 * len(plan.problems) * len(plan.tune.optimizers)
    assert plan.descent_runs
    for data in plan.data.values():  # the published sizes, in each data set's own format
        summary = json.loads((workdir / data["summary"]).read_text())
        counts = {"cifar10": (50_000, 10_000), "cifar100": (50_000, 10_000), "stl10": (5_000, 8_000),
                  "mnist": (60_000, 10_000), "fashion_mnist": (60_000, 10_000)}.get(summary["dataset"])
        if counts:
            assert (summary["n_train"], summary["n_test"]) == counts
        else:
            assert (summary["vocab_size"], summary["n_train"], summary["n_valid"], summary["n_test"]) == \
                (10_000, 929_589, 73_760, 82_430)


def test_every_job_finished(rehearsal):
    workdir, plan = rehearsal
    assert missing_runs(plan, workdir) == []
    for run in plan.train_runs + plan.tune.finals:
        info = json.loads((workdir / run.file("run.json")).read_text())
        assert info["epochs_completed"] == run.spec["epochs"] and info["finished"], run.dir
    for trial in plan.tune.trials:
        assert (workdir / trial.dir / "metrics.csv").exists(), trial.dir
    for run in plan.descent_runs:
        assert (workdir / run.dir / "summary.csv").exists(), run.dir
    assert (workdir / plan.report_html).stat().st_size > 0


def test_every_problem_has_its_tables_and_figures(rehearsal):
    workdir, plan = rehearsal
    tables = workdir / plan.tables_dir
    summary = pd.read_parquet(tables / "optimizer_summary.parquet")
    optimizers = {r.optimizer for r in plan.train_runs}
    for problem in plan.problems:
        assert set(summary.loc[summary["problem"] == problem, "optimizer"]) == optimizers, problem
    cost = pd.read_parquet(tables / "cost.parquet")
    assert set(cost["problem"]) >= set(plan.problems)
    figures = files.train_figure_files(list(plan.problems), workdir / plan.figures_dir / "train", ("png",))
    assert figures and all(Path(f).stat().st_size > 0 for f in figures)


def test_every_run_records_its_peak_memory(rehearsal):
    workdir, plan = rehearsal
    for run in plan.train_runs:
        info = json.loads((workdir / run.file("run.json")).read_text())
        assert info.get("peak_host_mb", 0) > 0, f"{run.dir}: no peak_host_mb in run.json"


def test_the_first_screen_names_each_problems_best_optimizer(rehearsal):
    workdir, plan = rehearsal
    html = (workdir / plan.report_html).read_text()
    body = html.split("<body")[1]
    first_screen = body[body.index("The answer"):body.index('id="per-problem"')]  # as test_whole_study
    summary = pd.read_parquet(workdir / plan.tables_dir / "optimizer_summary.parquet")
    for problem in plan.problems:
        best = summary[summary["problem"] == problem].sort_values(["rank", "optimizer"]).iloc[0]
        name = re.escape(best.optimizer)  # the one first, or the best mean of those who can each be first
        assert re.search(rf"(first: <strong>{name}</strong>|best mean {name} )", first_screen.split(problem, 1)[-1]), \
            f"{problem}: its best optimizer {best.optimizer} is not named on the first screen"
