"""Calibration (optimbench.calibrate): the equivalence verdict, the table against scipy, the preset from the
published settings, and the words beside a comparison."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from optimbench import calibrate
from optimbench import config as study_config
from optimbench import plan as plans
from optimbench.runs import StudyProblem

from helpers import ROOT

PROBLEM = StudyProblem.from_summary("quadratic_deep", {
    "primary": "test_loss", "target": 87.7, "metrics": [
        {"name": "train_loss", "higher_is_better": False, "low": 0.0, "high": None},
        {"name": "test_loss", "higher_is_better": False, "low": 0.0, "high": None}]})


@pytest.mark.parametrize("low, high, margin, verdict", [
    (-0.5, 0.5, 1.0, "reproduces"), (-1.5, 0.5, 1.0, "inconclusive"), (1.2, 3.0, 1.0, "differs"),
    (-3.0, -1.01, 1.0, "differs"), (0.2, 0.4, 0.3, "inconclusive"), (np.nan, np.nan, 1.0, "inconclusive")])
def test_equivalence_verdicts(low, high, margin, verdict):
    assert calibrate.equivalence(low, high, margin) == verdict


def seeds_frame(own, theirs):
    rows = [{"problem": "quadratic_deep", "optimizer": name, "seed": 42 + i, "final_test_loss": v,
             "best_test_loss": v - 1.0}
            for name, values in (("Adam-deepobs", own), ("Adam [deepobs-v1.1]", theirs)) for i, v in enumerate(values)]
    return pd.DataFrame(rows)


def test_calibration_table_against_scipy():
    own, theirs = [87.10, 87.20, 87.15, 87.18], [87.12, 87.11, 87.13, 87.10]
    table = calibrate.calibration_table(seeds_frame(own, theirs), {"quadratic_deep": PROBLEM},
                                        {"Adam [deepobs-v1.1]": "Adam-deepobs"}, 0.95)
    assert table[["metric", "at"]].values.tolist() == [["test_loss", "final"], ["test_loss", "best"]]
    row = table.iloc[0]
    interval = stats.ttest_ind(own, theirs, equal_var=False).confidence_interval(0.95)
    assert (row["difference_ci_low"], row["difference_ci_high"]) == pytest.approx((interval.low, interval.high))
    assert row["difference"] == pytest.approx(np.mean(own) - np.mean(theirs))
    assert row["margin"] == pytest.approx(0.01 * np.mean(theirs))
    assert row["own_ci_low"] == pytest.approx(stats.t.interval(0.95, 3, np.mean(own), stats.sem(own))[0])
    assert row["verdict"] == "reproduces" and (row["own_seeds"], row["published_seeds"]) == (4, 4)
    words = calibrate.verdict_words(table, "quadratic_deep", "Adam [deepobs-v1.1]", "test_loss")
    assert words.startswith("this study's own Adam-deepobs **reproduces** it on quadratic_deep "
                            "(final test loss 87.16 vs")


def test_a_clear_gap_differs_and_an_uncalibrated_pair_says_so():
    table = calibrate.calibration_table(seeds_frame([90.0, 90.1, 90.2], [87.0, 87.1, 87.05]),
                                        {"quadratic_deep": PROBLEM}, {"Adam [deepobs-v1.1]": "Adam-deepobs"})
    assert table["verdict"].tolist() == ["differs", "differs"]
    assert calibrate.verdict_words(table, "quadratic_deep", "SGD [deepobs-v1.1]", "test_loss").startswith(
        "not calibrated")
    assert calibrate.verdict_words(table, "quadratic_deep", "Adam [deepobs-v1.1]", "test_loss").startswith(
        "this study's own Adam-deepobs **differs** from it on quadratic_deep")
    assert calibrate.calibration_table(seeds_frame([1.0], [1.0]), {"quadratic_deep": PROBLEM}, {}).empty


def test_preset_runs_deepobs_best_settings_in_torch_form():
    preset = calibrate.preset("quadratic_deep")
    assert preset["optimizers"]["SGD-deepobs"]["kwargs"] == {"lr": 1.5848931925e-02}
    assert preset["optimizers"]["Momentum-deepobs"]["kwargs"] == {"lr": 2.5118864315e-03, "momentum": 0.99,
                                                                  "nesterov": False}
    assert preset["optimizers"]["Adam-deepobs"]["kwargs"] == {"lr": 3.9810717055e-02, "betas": [0.9, 0.999],
                                                              "eps": 1e-8}
    assert (preset["train"]["epochs"], preset["train"]["batch_size"]) == (100, 128)
    assert preset["train"]["seeds"] == list(range(42, 52))
    assert preset["published"]["deepobs-v1.1"]["calibrate"] == {"SGD": "SGD-deepobs", "Momentum": "Momentum-deepobs",
                                                                "Adam": "Adam-deepobs"}
    assert calibrate.preset("cifar100_allcnnc")["train"]["batch_size"] == 256


def test_published_words_name_the_source_and_each_calibration():
    runs = [{"optimizer": "Adam [deepobs-v1.1]", "problem": "quadratic_deep", "seed": s} for s in (42, 43)]
    source = {"title": "DeepOBS baselines v1.1", "repository": "fsschneider/DeepOBS_Baselines", "release": "v1.1",
              "commit": "3da285abf9786e823aaef6d0fc0c9c98ef5d6d83", "licence": "MIT", "framework": "TensorFlow 1.x"}
    settings = {"sources": {"deepobs-v1.1": {"source": source, "runs": runs}}}
    table = calibrate.calibration_table(seeds_frame([87.1, 87.2, 87.15], [87.12, 87.11, 87.13]),
                                        {"quadratic_deep": PROBLEM}, {"Adam [deepobs-v1.1]": "Adam-deepobs"})
    words = calibrate.published_words(settings, table)
    assert words.startswith("**Published runs, not trained here**: 2 runs of Adam [deepobs-v1.1] on quadratic_deep "
                            "(seeds 42–43, theirs), imported from the DeepOBS baselines v1.1 "
                            "(fsschneider/DeepOBS_Baselines at v1.1, commit 3da285a, licence MIT; trained with "
                            "TensorFlow 1.x)")
    assert "own Adam-deepobs **reproduces** it on quadratic_deep (final test loss 87.15 vs 87.12" in words
    assert calibrate.published_words({}, table.iloc[:0]) == ""


@pytest.mark.parametrize("problem", ["quadratic_deep", "cifar10_3c3d"])
def test_the_written_preset_is_a_valid_study_of_the_published_settings(tmp_path, problem):
    # what `make calibrate DEEPOBS_PROBLEM=...` writes and runs: its plan trains the three settings at every
    # published seed and pairs each with its published runs
    calibrate.main(["--preset", problem, "--out", str(tmp_path / "c.yaml"), "--dir", str(tmp_path)])
    merged = study_config.deep_merge(study_config.load_yaml_files([ROOT / "config.yaml"]),
                                     study_config.load_yaml_files([tmp_path / "c.yaml"]))
    plan = plans.plan(study_config.validate(merged))
    assert len(plan.train_runs) == 3 * 10 and len(plan.published_runs()) == 3 * 10
    assert calibrate.plan_pairs(plan.settings) == {"SGD [deepobs-v1.1]": "SGD-deepobs",
                                                   "Momentum [deepobs-v1.1]": "Momentum-deepobs",
                                                   "Adam [deepobs-v1.1]": "Adam-deepobs"}
