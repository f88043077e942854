"""The report's text, computed from hand-made tables: the ranking, the conclusions, the verdict counts,
the cost projection and the warning when the config differs from the runs."""

import numpy as np
import pandas as pd

from optimbench import report


def summary():
    return pd.DataFrame({
        "optimizer": ["Adam", "SGD", "Boom"], "rank": [1.0, 2.0, 3.0], "seeds": [3, 3, 3], "divergences": [0, 0, 3],
        "final_test_acc": [0.91, 0.90, 0.0], "final_test_acc_ci_low": [0.88, 0.85, 0.0],
        "final_test_acc_ci_high": [0.94, 0.95, 0.0], "separated_from_best": [False, False, True],
        "lowest_test_loss": [0.30, 0.25, np.inf], "lowest_test_loss_epoch": [4.0, 3.0, np.nan]})


def claims():
    return pd.DataFrame({"claim": ["a", "b", "c", "d"], "verdict": ["holds", "holds", "contradicted", "not tested"]})


def test_training_conclusion_names_best_worst_ties_and_divergences():
    text = report.training_conclusion(summary(), claims())
    assert "Highest mean final test accuracy: **Adam** (0.9100 [0.8800, 0.9400], 3 seed(s)); the seeds do not " \
           "separate it from SGD. Lowest: **Boom** (0.0000)." in text
    assert "Lowest test loss reached: **SGD** (0.2500, epoch 3 on average)." in text
    assert "Boom (3 of 3)" in text
    assert "Of the article's 4 claims: 2 hold, 1 contradicted, 0 inconclusive at 95% confidence, 1 not tested." in text


def test_ranking_lists_every_optimizer_with_its_interval():
    text = report.ranking(summary(), 0.95)
    lines = text.splitlines()[2:]
    assert lines == ["1. **Adam**: 0.9100 [0.8800, 0.9400] over 3 seed(s)",
                     "2. **SGD**: 0.9000 [0.8500, 0.9500] over 3 seed(s) — not separated from the best by these seeds",
                     "3. **Boom**: 0.0000 [0.0000, 0.0000] over 3 seed(s), **3 diverged** (scored 0) — below the best"]


def test_claims_summary_counts_each_verdict():
    text = report.claims_summary(claims())
    assert text.startswith("The article's 4 claims: 2 holds, 1 contradicted, 0 inconclusive, 1 not tested.")
    assert "- *contradicted*: c" in text


def test_cost_projects_the_article_study_from_start_up_and_epochs():
    cost = pd.DataFrame([{"optimizer": "all", "unit": "GPU", "device": "H100", "runs": 6, "epochs": 24,
                          "device_seconds": 7200.0, "startup_device_seconds_per_run": 20.0,
                          "device_seconds_per_epoch": 30.0, "samples_per_second": 5000.0, "share": 0.25}])
    text = report.cost_conclusion(cost, "digits")
    assert "**2.000 GPU-hours** for 6 runs and 24 epochs on H100" in text
    hours = (7 * 3 * 20.0 + 7 * 3 * 50 * 30.0) / 3600  # the article's 7 optimizers × 3 seeds × 50 epochs
    assert f"would take **{hours:.2f} GPU-hours**" in text and report.ARTICLE_STUDY == {
        "optimizers": 7, "seeds": 3, "epochs": 50}


def test_mismatch_warning_only_when_runs_differ_from_the_config():
    runs = pd.DataFrame({"optimizer": ["SGD", "SGD"], "seed": [0, 1], "matches_config": [True, True],
                         "differences": ["", ""]})
    assert report.mismatch_warning(runs) == ""
    runs.loc[1, ["matches_config", "differences"]] = [False, "optimizer.kwargs.lr: 0.01 recorded, 0.5 in the config"]
    text = report.mismatch_warning(runs)
    assert text.startswith("**Warning: 1 of 2 runs were trained with other settings")
    assert "- SGD seed 1: optimizer.kwargs.lr: 0.01 recorded, 0.5 in the config" in text


def test_descent_finding_per_function():
    runs = pd.DataFrame({"function": ["ackley", "ackley", "beale"], "method": ["SGD", "Adam", "SGD"],
                         "gradient": ["autograd"] * 3, "group": ["g"] * 3, "final_f": [3.0, 0.001, np.nan],
                         "diverged": [False, False, True], "reached_minimum": [False, True, False]})
    lines = report.descent_finding(runs).splitlines()
    assert lines == ["- ackley: 1 of 2 runs reached a global minimum; lowest value 0.001 by Adam (autograd, g).",
                     "- beale: 0 of 1 runs reached a global minimum; 1 diverged."]


def test_study_heading_names_the_data_and_model_the_runs_used():
    runs = pd.DataFrame({"dataset": ["digits"], "model": ["resnet18_cifar"], "width": [8], "train_images": [1347],
                         "test_images": [450]})
    assert report.study_heading(runs) == "digits, resnet18_cifar (width 8, 1,347 training / 450 test images)"
