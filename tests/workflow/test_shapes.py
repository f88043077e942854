"""Every shape of configuration a user may write runs to a report (issue 29, item 3): a study without descent
groups, a study without tuning, one problem, one optimizer, one seed (no intervals: said, not crashed), and a
problem whose target no run reaches. One tiny study holds every shape at once (`descent: {groups: []}`,
`tune.enabled: false`, one problem × one optimizer × one seed, a target one epoch cannot reach: the smallest
study there is, ≈ 1 min); each test checks one shape.
"""

import re

import pandas as pd
import pytest
from conftest import tiny_config

from optimbench import labels

from helpers import snakemake, write_config
from workflow_study import PROBLEM

pytestmark = pytest.mark.workflow

UNREACHABLE = 0.999  # test accuracy of a width-8 ResNet18 after one epoch on digits: ≈ 0.2 to 0.5


def run_study(tmp_path_factory, name: str, **changes):
    workdir = tmp_path_factory.mktemp(name)
    config = write_config(workdir / f"{name}.yaml", **tiny_config(**changes))
    snakemake(workdir, config, "--cores", "2")
    results = workdir / "results"
    return results, (results / "report" / "study.html").read_text()


def visible_text(html: str) -> str:
    """The report's words without its tags, scripts and styles, whitespace collapsed."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.fixture(scope="module")
def minimal(tmp_path_factory):
    return run_study(tmp_path_factory, "minimal", problems=[PROBLEM],
                     problem_settings={PROBLEM: {"target": UNREACHABLE}},
                     train={"optimizers": ["Adam"], "seeds": [0], "epochs": 1},
                     descent={"groups": []}, tune={"enabled": False})


def test_a_study_without_descent_groups_reports_its_training(minimal):
    results, html = minimal
    assert pd.read_csv(results / "tables" / "descent_runs.csv").empty
    assert not (results / "descent").exists()
    assert list(pd.read_csv(results / "tables" / "optimizer_summary.csv")["optimizer"]) == ["Adam"]
    assert "No descent runs were found" in visible_text(html)


def test_a_study_without_tuning_reports_no_tuned_ranking(minimal):
    results, html = minimal
    assert not (results / "tables" / "rankings.csv").exists()
    assert not (results / "tune").exists()


def test_one_problem_one_optimizer_one_seed_says_no_interval(minimal):
    results, html = minimal
    summary = pd.read_csv(results / "tables" / "optimizer_summary.csv")
    assert len(summary) == 1 and summary["seeds"].iloc[0] == 1
    assert summary[["final_ci_low", "final_ci_high"]].isna().all().all()  # no interval, not a zero-width one
    value = re.escape(labels.number(summary["final"].iloc[0]))
    assert re.search(rf"Adam {value} \(fewer than 2 completed seeds: no interval\)", visible_text(html))


def test_a_target_no_run_reaches_is_reported_as_unreached(minimal):
    results, html = minimal
    summary = pd.read_csv(results / "tables" / "optimizer_summary.csv")
    assert summary["runs_reaching_target"].tolist() == [0] and summary["final"].iloc[0] < UNREACHABLE
    assert summary[["epochs_to_target", "seconds_to_target"]].isna().all().all()  # unknown, not 0 or infinite
    assert (results / "figures" / "train" / PROBLEM / "time_to_target.png").stat().st_size > 0
    assert f"test accuracy ≥ {UNREACHABLE}" in visible_text(html)  # the target is stated, the report is made
