"""A failed seed, end to end (issue 36): a file optimizer that blows up under one seed only. The study runs to its
report, the failed run is named by seed and never averaged, the focus optimizer's verdict does not come from the
blow-up, and the final-metric figure is drawn on the completed seeds' scale with the failed seed at its edge."""

import re
from pathlib import Path

import pandas as pd
import pytest
from conftest import tiny_config

from optimbench import plots
from optimbench.runs import read_plan

from helpers import snakemake, write_config
from workflow_study import VAE

pytestmark = pytest.mark.workflow
# SGD, except under seed 1 (the trainer seeds torch with the run's seed before it builds the optimizer): from
# its 30th step on, a step 50 times too long, and the VAE's loss blows up.
FLAKY = '''import torch


class Flaky(torch.optim.SGD):
    """SGD that blows up under seed 1 only (a test's optimizer)."""

    def __init__(self, params, lr=0.01, momentum=0.9):
        super().__init__(params, lr=lr, momentum=momentum)
        self.seed, self.steps = torch.initial_seed(), 0

    def step(self, closure=None):
        self.steps += 1
        if self.seed == 1 and self.steps == 30:
            for group in self.param_groups:
                group["lr"] *= 50
        return super().step(closure)
'''


@pytest.fixture(scope="module")
def failed_study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("failed")
    (folder / "flaky.py").write_text(FLAKY)
    sections = tiny_config(problems=[VAE], train={"optimizers": ["Flaky", "SGD"], "seeds": [0, 1, 2], "epochs": 2},
                           tune={"enabled": False}, descent={"groups": []},
                           report={"focus": "Flaky", "title": "a failed seed"})
    sgd = {"class": "SGD", "kwargs": {"lr": 0.01, "momentum": 0.9}}
    sections["optimizers"] = {"Flaky": {"class": "flaky.py:Flaky"}, "SGD": sgd}
    config = write_config(folder / "failed.yaml", **sections)
    snakemake(folder, config, "--cores", "2")
    return folder


def test_the_failed_seed_is_named_listed_and_never_averaged(failed_study):
    tables = failed_study / "results" / "tables"
    seeds = pd.read_parquet(tables / "seed_summary.parquet").set_index(["optimizer", "seed"])
    assert seeds["failed"].to_dict() == {(o, s): o == "Flaky" and s == 1 for o in ("Flaky", "SGD") for s in (0, 1, 2)}
    summary = pd.read_parquet(tables / "optimizer_summary.parquet").set_index("optimizer")
    assert summary.loc["Flaky", "failed"] == 1 and summary.loc["Flaky", "failed_seeds"] == "1"
    completed = seeds.loc[[("Flaky", 0), ("Flaky", 2)], "final"].mean()
    assert summary.loc["Flaky", "final"] == pytest.approx(completed)  # the blow-up is not in the mean
    focus = pd.read_parquet(tables / "focus.parquet").iloc[0]
    assert focus["focus_failed"] == "1" and focus["pairs"] == 2 and focus["family_size"] == 1
    assert focus["verdict"] != "better"  # a failed run only ever counts against its own optimizer
    html = (failed_study / "results" / "report" / "study.html").read_text()
    text = re.sub(r"<[^>]+>", "", re.sub(r'src="data:image/png;base64,[^"]*"', "", html))
    assert "Flaky's seed 1 failed (not averaged)" in text
    assert "failed runs: Flaky seed 1" in text
    assert "How comparisons are decided" in text and "one family of 1 comparisons" in text
    assert not re.search(r"\d{7,}", text.split("Setup")[0])  # no 7-digit number before the setup


def test_the_final_metric_figure_keeps_the_failed_seed_at_its_edge(failed_study, monkeypatch):
    tables = failed_study / "results" / "tables"
    plan = read_plan(failed_study / "results" / "plan.json")
    drawn = {}
    monkeypatch.setattr(plots, "save", lambda fig, stem, formats=(): drawn.setdefault(Path(stem).name, fig) and [])
    plots.train_figures(plan, tables, failed_study / "redrawn")
    ax = drawn["final_metric"].axes[0]
    seeds = pd.read_parquet(tables / "seed_summary.parquet")
    summary = pd.read_parquet(tables / "optimizer_summary.parquet")
    shown = pd.concat([seeds.loc[~seeds["failed"], "final"], summary["final_ci_low"], summary["final_ci_high"]])
    low, high = ax.get_ylim()
    span = shown.max() - shown.min()
    # the completed seeds' and intervals' scale (5 % margin), far below the failed seed's value
    assert (low, high) == (pytest.approx(shown.min() - 0.05 * span), pytest.approx(shown.max() + 0.05 * span))
    assert high < seeds.loc[seeds["failed"], "final"].min()
    crosses = [ln for ln in ax.get_lines() if ln.get_marker() == "x"]
    assert [list(c.get_ydata()) for c in crosses] == [[1.0]]  # one failed seed, at the top edge (axes y = 1)
