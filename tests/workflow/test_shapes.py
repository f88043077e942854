"""Every shape of configuration a user may write runs to a report (issue 29, item 3): a study without descent
groups, a study without tuning, one problem, one optimizer, one seed (no intervals: said, not crashed), and a
problem whose target no run reaches. Two tiny studies cover them, each shape with its own test:

- `training_only`: `descent: {groups: []}` and `tune.enabled: false` (one problem, two optimizers, two seeds);
- `single`: one problem, one optimizer, one seed, a target above what one epoch reaches (descent: one run).
"""

import re

import pandas as pd
import pytest
from conftest import tiny_config

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
def training_only(tmp_path_factory):
    return run_study(tmp_path_factory, "training-only", problems=[PROBLEM],
                     problem_settings={PROBLEM: {"target": 0.3}},
                     train={"optimizers": ["SGD", "Adam"], "seeds": [0, 1], "epochs": 1},
                     descent={"groups": []}, tune={"enabled": False})


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    return run_study(tmp_path_factory, "single", problems=[PROBLEM],
                     problem_settings={PROBLEM: {"target": UNREACHABLE}},
                     train={"optimizers": ["Adam"], "seeds": [0], "epochs": 1},
                     descent={"groups": [{"name": "one", "functions": ["ackley"], "methods": ["Adam"],
                                          "gradients": ["autograd"], "early_stop": False, "max_epochs": 20}]},
                     tune={"enabled": False})


def test_a_study_without_descent_groups_reports_its_training(training_only):
    results, html = training_only
    assert pd.read_csv(results / "tables" / "descent_runs.csv").empty
    summary = pd.read_csv(results / "tables" / "optimizer_summary.csv")
    assert sorted(summary["optimizer"]) == ["Adam", "SGD"] and (summary["seeds"] == 2).all()
    assert "Adam" in visible_text(html)


def test_a_study_without_tuning_reports_no_tuned_ranking(training_only):
    results, html = training_only
    assert not (results / "tables" / "rankings.csv").exists()
    assert not (results / "tune").exists()


def test_one_problem_one_optimizer_one_seed_says_no_interval(single):
    results, html = single
    summary = pd.read_csv(results / "tables" / "optimizer_summary.csv")
    assert len(summary) == 1 and summary["seeds"].iloc[0] == 1
    interval = [c for c in summary.columns if c.endswith("_low") or c.endswith("_high")]
    assert interval and summary[interval].isna().all().all()  # one seed: no interval, not a zero-width one
    text = visible_text(html)
    assert "Adam" in text and re.search(r"one seed|1 seed|no interval|single seed", text, re.I), \
        "the report does not say that one seed gives no interval"


def test_a_target_no_run_reaches_is_said(single):
    results, html = single
    summary = pd.read_csv(results / "tables" / "optimizer_summary.csv")
    reached = [c for c in summary.columns if "reach" in c]
    assert reached and (summary[reached[0]] == 0).all()
    assert re.search(r"no (run|optimizer)[^.]{0,80}reach|not reached|never reach", visible_text(html), re.I), \
        "the report does not say that no run reached the target"
