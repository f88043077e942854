"""The focus verdicts (optimbench.focus) on hand-made runs: better, worse and inconclusive, each checked
against Welch's test computed by hand (the Welch–Satterthwaite interval) and by scipy's two-sided test."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from optimbench import focus
from optimbench.runs import StudyProblem

ACC = StudyProblem.from_summary("cls", {"primary": "test_acc", "target": 0.5, "metrics": [
    {"name": "test_acc", "higher_is_better": True, "low": 0.0, "high": 1.0}]})
VAE = StudyProblem.from_summary("vae", {"primary": "test_neg_elbo", "target": 100.0, "metrics": [
    {"name": "test_neg_elbo", "higher_is_better": False, "low": 0.0, "high": None}]})
# cls: Mine beats Slow clearly, loses to Fast clearly, and Noisy's spread hides a difference
CLS = {"Mine": [0.80, 0.82, 0.81], "Fast": [0.90, 0.91, 0.92], "Slow": [0.50, 0.52, 0.49],
       "Noisy": [0.70, 0.95, 0.60]}
# vae (lower is better): Mine's 100 nats beat Big's 130, lose to Tiny's 80; Wide cannot be told apart
VAES = {"Mine": [100.0, 101.0, 99.0], "Big": [130.0, 128.0, 131.0], "Tiny": [80.0, 81.0, 79.5],
        "Wide": [70.0, 140.0, 95.0]}


def seeds() -> pd.DataFrame:
    return pd.DataFrame([{"problem": p, "optimizer": o, "seed": s, "final": v}
                         for p, runs in (("cls", CLS), ("vae", VAES)) for o, values in runs.items()
                         for s, v in enumerate(values)])


def by_hand(a, b, confidence=0.95):
    """Welch's interval of mean(a) - mean(b) from its formula, and scipy's two-sided p."""
    a, b = np.asarray(a), np.asarray(b)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    half = scipy_stats.t.ppf((1 + confidence) / 2, df) * math.sqrt(va + vb)
    diff = a.mean() - b.mean()
    return diff, diff - half, diff + half, scipy_stats.ttest_ind(a, b, equal_var=False).pvalue


@pytest.mark.parametrize("problem, runs, expected", [
    ("cls", CLS, {"Fast": "worse", "Slow": "better", "Noisy": "inconclusive"}),
    ("vae", VAES, {"Tiny": "worse", "Big": "better", "Wide": "inconclusive"})])
def test_focus_verdicts_match_a_hand_computed_welch_test(problem, runs, expected):
    table = focus.focus_table(seeds(), {"cls": ACC, "vae": VAE}, "Mine", 0.95)
    mine = table[table["problem"] == problem].set_index("baseline")
    assert set(mine.index) == set(expected) and (mine["focus"] == "Mine").all()
    for baseline, verdict in expected.items():
        diff, low, high, p = by_hand(runs["Mine"], runs[baseline])
        row = mine.loc[baseline]
        assert row["verdict"] == verdict, baseline
        assert row["difference"] == pytest.approx(diff) and row["p_value"] == pytest.approx(p)
        assert (row["difference_ci_low"], row["difference_ci_high"]) == (pytest.approx(low), pytest.approx(high))
        assert (p < 0.05) == (verdict != "inconclusive") == (low > 0 or high < 0)  # the interval agrees
    # the best baseline is the best mean in the metric's direction, and comes first
    best = "Fast" if problem == "cls" else "Tiny"  # Tiny 80.2 nats, lowest
    assert mine["best_baseline"].to_dict() == {b: b == best for b in expected}
    assert table[table["problem"] == problem].iloc[0]["baseline"] == best


def test_no_focus_or_a_focus_without_runs_gives_an_empty_table():
    for name in (None, "Absent"):
        table = focus.focus_table(seeds(), {"cls": ACC}, name)
        assert table.empty and list(table.columns) == focus.FOCUS_COLUMNS


def test_a_diverged_seed_loses_without_an_interval():
    frame = seeds()
    frame.loc[(frame["problem"] == "vae") & (frame["optimizer"] == "Big"), "final"] = [math.inf, 130.0, 131.0]
    row = focus.focus_table(frame, {"vae": VAE}, "Mine").set_index("baseline").loc["Big"]
    assert row["verdict"] == "better" and math.isinf(row["difference"]) and math.isnan(row["difference_ci_low"])


def test_the_config_check_refuses_a_focus_outside_the_study():
    from optimbench import config
    from optimbench.errors import ConfigError

    from helpers import ROOT

    base = config.load_yaml_files([ROOT / "config.yaml"])
    with pytest.raises(ConfigError, match=r"report.focus = 'Adamm' is not an optimizer of this study; train.optimizers"
                                          r" = \[.*\]. Did you mean 'Adam'\? Set report.focus to one of them"):
        config.validate(config.deep_merge(base, {"report": {"focus": "Adamm"}}))
    checked = config.validate(config.deep_merge(base, {"report": {"focus": "Adam"}}))
    assert checked["report"]["focus"] == "Adam" and config.validate(base)["report"]["focus"] is None
