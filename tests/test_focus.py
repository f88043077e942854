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


def by_hand(a, b, m, confidence=0.95):
    """The paired t-test of the per-seed differences a − b from its formula: mean, the t interval at the
    family's simultaneous level 1 − α/m, and scipy's two-sided p (ttest_rel)."""
    d = np.asarray(a) - np.asarray(b)
    se = d.std(ddof=1) / math.sqrt(len(d))
    half = scipy_stats.t.ppf(1 - (1 - confidence) / m / 2, len(d) - 1) * se
    return d.mean(), d.mean() - half, d.mean() + half, scipy_stats.ttest_rel(a, b).pvalue


def holm_by_hand(p):
    """Holm's adjusted p-values for a small list, written out: sorted ascending, (m − k)·p_(k), running max."""
    order = sorted(range(len(p)), key=lambda i: p[i])
    out, running = [0.0] * len(p), 0.0
    for k, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - k) * p[i]))
        out[i] = running
    return out


@pytest.mark.parametrize("problem, runs, expected", [
    ("cls", CLS, {"Fast": "worse", "Slow": "better", "Noisy": "inconclusive"}),
    ("vae", VAES, {"Tiny": "worse", "Big": "better", "Wide": "inconclusive"})])
def test_focus_verdicts_are_the_paired_test_holm_adjusted_over_baselines_times_problems(problem, runs, expected):
    table = focus.focus_table(seeds(), {"cls": ACC, "vae": VAE}, "Mine", 0.95)
    assert (table["family_size"] == 6).all()  # 3 baselines × 2 problems: one family
    raw = {(r.problem, r.baseline): scipy_stats.ttest_rel(
        (CLS if r.problem == "cls" else VAES)["Mine"], (CLS if r.problem == "cls" else VAES)[r.baseline]).pvalue
        for r in table.itertuples()}
    adjusted = dict(zip(raw, holm_by_hand(list(raw.values()))))
    mine = table[table["problem"] == problem].set_index("baseline")
    assert set(mine.index) == set(expected) and (mine["focus"] == "Mine").all()
    for baseline, verdict in expected.items():
        diff, low, high, p = by_hand(runs["Mine"], runs[baseline], 6)
        row = mine.loc[baseline]
        assert row["verdict"] == verdict, baseline
        assert row["difference"] == pytest.approx(diff) and row["p_value"] == pytest.approx(p)
        assert row["p_adjusted"] == pytest.approx(adjusted[problem, baseline])
        assert (row["difference_ci_low"], row["difference_ci_high"]) == (pytest.approx(low), pytest.approx(high))
        assert (row["p_adjusted"] < 0.05) == (verdict != "inconclusive")
        assert row["test"] == "paired t" and row["pairs"] == 3
        if verdict != "inconclusive":
            assert pd.isna(row["seeds_needed"])  # only an undecided comparison says how many seeds would settle it
    # the best baseline is the best mean in the metric's direction, and comes first
    best = "Fast" if problem == "cls" else "Tiny"  # Tiny 80.2 nats, lowest
    assert mine["best_baseline"].to_dict() == {b: b == best for b in expected}
    assert table[table["problem"] == problem].iloc[0]["baseline"] == best


def test_a_failed_baseline_seed_is_named_not_averaged_and_never_makes_a_win_inconclusive():
    """The reported case (issue 36): on a VAE, SGD's seeds end at 667.8, 266,699,372 (its KL blew up: a failed
    run) and 1542.8; the focus wins on every seed. The comparison is made on the two seeds both completed,
    and the failed seed counts against SGD only: Mine is never *worse*, the difference is not 9 digits."""
    runs = {"Mine": [160.0, 170.0, 165.0], "SGD": [667.8, 266_699_372.0, 1542.8]}
    frame = pd.DataFrame([{"problem": "vae", "optimizer": o, "seed": s, "final": v, "failed": o == "SGD" and s == 1}
                          for o, values in runs.items() for s, v in enumerate(values)])
    row = focus.focus_table(frame, {"vae": VAE}, "Mine").iloc[0]
    d = np.array([160.0 - 667.8, 165.0 - 1542.8])  # seeds 0 and 2
    assert row["difference"] == pytest.approx(d.mean()) and row["pairs"] == 2
    assert row["p_value"] == pytest.approx(scipy_stats.ttest_rel([160.0, 165.0], [667.8, 1542.8]).pvalue)
    assert row["baseline_failed"] == "1" and row["focus_failed"] == "" and (row["wins"], row["losses"]) == (3, 0)
    assert row["baseline_mean"] == pytest.approx((667.8 + 1542.8) / 2)  # the completed seeds
    # with SGD's failed seed the verdict is what the two completed seeds say (here too spread to decide) ...
    assert row["verdict"] == "inconclusive" and row["seeds_needed"] >= 3
    # ... and replacing the failed seed by a completed one that also loses can only help Mine
    completed = frame.assign(failed=False, final=[160.0, 170.0, 165.0, 667.8, 700.0, 1542.8])
    assert focus.focus_table(completed, {"vae": VAE}, "Mine").iloc[0]["p_value"] <= row["p_value"]


def test_no_focus_or_a_focus_without_runs_gives_an_empty_table():
    for name in (None, "Absent"):
        table = focus.focus_table(seeds(), {"cls": ACC}, name)
        assert table.empty and list(table.columns) == focus.FOCUS_COLUMNS


def test_a_focus_variant_is_never_a_baseline_and_baselines_name_the_field():
    frame = seeds()
    variant = frame[frame["optimizer"] == "Mine"].assign(optimizer="Mine-v2", final=lambda f: f["final"] * 0.5)
    frame = pd.concat([frame, variant], ignore_index=True)
    table = focus.focus_table(frame, {"cls": ACC, "vae": VAE}, ["Mine", "Mine-v2"])
    assert set(table["focus"]) == {"Mine", "Mine-v2"} and "Mine-v2" not in set(table["baseline"])
    assert "Mine" not in set(table["baseline"]) and (table["family_size"] == 12).all()  # 2 × 3 × 2
    only = focus.focus_table(frame, {"cls": ACC}, "Mine", baselines=["Fast"])
    assert only["baseline"].tolist() == ["Fast"] and only["best_baseline"].tolist() == [True]


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


def test_the_config_check_takes_a_focus_list_and_baselines_and_refuses_a_focus_baseline():
    from optimbench import config
    from optimbench.errors import ConfigError

    from helpers import ROOT

    base = config.load_yaml_files([ROOT / "config.yaml"])
    checked = config.validate(config.deep_merge(base, {"report": {"focus": ["Adam", "AdamW"], "baselines": ["SGD"]}}))
    assert checked["report"]["focus"] == ["Adam", "AdamW"] and checked["report"]["baselines"] == ["SGD"]
    assert config.validate(base)["report"]["baselines"] is None
    with pytest.raises(ConfigError, match=r"report.baselines = 'SDG' is not an optimizer of this study.*"
                                          r"Did you mean 'SGD'\?"):
        config.validate(config.deep_merge(base, {"report": {"focus": "Adam", "baselines": ["SDG"]}}))
    with pytest.raises(ConfigError, match=r"report.baselines names \['Adam'\], also in report.focus"):
        config.validate(config.deep_merge(base, {"report": {"focus": ["Adam"], "baselines": ["Adam", "SGD"]}}))


def test_one_pair_reads_the_same_word_in_every_place_that_words_it():
    """Issue 36: the focus section said "inconclusive" where the per-problem answer and the ranks said "the seeds
    separate them". Every place now reads the study's one comparison table: a pair decided in the focus table is
    ordered in the summary's places, the ranks' places and the report's words, and a pair left undecided shares a
    place everywhere."""
    from optimbench import aggregate, performance, report
    from optimbench.compare import study_comparisons

    # "Mine" against "Clear" (5 nats lower on every seed, little spread) and "Noisy" (spread hides it), 4 seeds
    runs = {"Mine": [100.0, 101.0, 99.0, 100.5], "Clear": [105.2, 106.1, 103.9, 105.4],
            "Noisy": [80.0, 140.0, 95.0, 110.0]}
    seeds = pd.DataFrame([{"problem": "vae", "optimizer": o, "seed": s, "final": v, "best": v, "diverged": False,
                           "failed": False, "reached_target": True, "epochs_to_target": 1, "seconds_to_target": 1.0,
                           "mean_epoch_seconds": 1.0}
                          for o, values in runs.items() for s, v in enumerate(values)])
    problems = {"vae": VAE}
    compared = study_comparisons(seeds, {"vae": False}, 0.95, "Mine")
    table = focus.focus_table(seeds, problems, "Mine", 0.95, compared).set_index("baseline")
    summary = aggregate.optimizer_summary(seeds, problems, 0.95, compared).set_index("optimizer")
    ranks = performance.rank_table(performance.performance_seeds(seeds), {"vae": VAE.primary}, 0.95,
                                   compared).set_index("optimizer")
    answer = report.problem_answer(summary.reset_index(), "vae", VAE.primary)
    ranking = report.ranking(summary.reset_index(), VAE.primary, 0.95)
    assert table.loc["Clear", "verdict"] == "better" and table.loc["Noisy", "verdict"] == "inconclusive"
    for places in (summary, ranks.rename(columns={"rank_low": "place_low", "rank_high": "place_high"})):
        assert places.loc["Mine", "place_low"] < places.loc["Clear", "place_low"]  # decided: Mine above Clear
        assert places.loc["Mine", "shares_with"] == "Noisy"  # undecided: shared, and only that one
        assert "Mine" not in places.loc["Clear", "shares_with"].split(", ")
    assert "no single first: **Mine**, **Noisy** can each be first" in answer
    assert "places 1–2 (with Noisy): **Mine**" in ranking and "(with Noisy): **Clear**" in ranking
    assert not summary.loc["Noisy", "separated_from_best"] and summary.loc["Clear", "separated_from_best"]
