"""The tuned comparison end to end on the shared tiny study: trials judged on validation only, a selection,
final runs tested once, the tables and the report's section; adding one trial runs only it and what follows."""

import json

import pandas as pd
import pytest
from conftest import tiny_config

from helpers import job_counts, snakemake, write_config
from workflow_study import EPOCHS, PROBLEMS, SEEDS, TRIALS, TUNED

pytestmark = pytest.mark.workflow
# Each problem's primary metric on validation, and whether the best is the highest (tune.select_by: final_val).
PRIMARY = {"digits-resnet18": ("acc", True), "digits-vae": ("neg_elbo", False)}


@pytest.mark.parametrize("problem", PROBLEMS)
def test_trials_are_judged_on_validation_and_the_best_is_rerun_over_the_seeds(study, problem):
    workdir = study[0]
    counts = job_counts(study[2].stdout + study[2].stderr)
    assert counts["trial"] == TRIALS * len(PROBLEMS) and counts["select"] == len(PROBLEMS)
    assert counts["tuned_train"] == len(SEEDS) * len(PROBLEMS)
    metric, higher = PRIMARY[problem]
    tune = f"results/tune/{problem}/Adam"
    scores = []
    for k in range(TRIALS):
        metrics = pd.read_csv(workdir / f"{tune}/trial{k}/metrics.csv")
        # the test set decides nothing
        assert metrics[f"test_{metric}"].isna().all() and metrics[f"val_{metric}"].notna().all()
        assert not (workdir / f"{tune}/trial{k}/model.pt").exists()
        scores.append(metrics[f"val_{metric}"].iloc[-1])
    selection = json.loads((workdir / f"{tune}/selected.json").read_text())
    best = pd.Series(scores).idxmax() if higher else pd.Series(scores).idxmin()
    assert selection["trial"] == int(best)  # the final validation value decides, in the metric's direction
    for seed in SEEDS:
        final = pd.read_csv(workdir / f"results/tuned/train/{problem}/Adam/seed{seed}/metrics.csv")
        assert final[f"test_{metric}"].notna().tolist() == [False] * (EPOCHS - 1) + [True]  # tested once, at the end
        info = json.loads((workdir / f"results/tuned/train/{problem}/Adam/seed{seed}/run.json").read_text())
        assert info["spec"]["optimizer"]["kwargs"]["lr"] == selection["setting"]["lr"]
        assert info["spec"]["selected_trial"] == selection["trial"]
        assert info["train_images"] == 1348 - 200  # the validation images are held out of training


def test_tune_tables_and_the_report_section(study):
    tables = study[0] / "results/tables"
    trials = pd.read_parquet(tables / "tune_trials.parquet")
    assert len(trials) == TRIALS * len(PROBLEMS) and trials["selected"].sum() == len(PROBLEMS)
    curves = pd.read_parquet(tables / "budget_curves.parquet")
    for problem, (_, higher) in PRIMARY.items():
        mine, scores = curves[curves["problem"] == problem], trials.loc[trials["problem"] == problem, "score"]
        assert mine["k"].tolist() == list(range(1, TRIALS + 1))
        assert mine["expected_best"].iloc[-1] == pytest.approx(scores.max() if higher else scores.min())
    rankings = pd.read_parquet(tables / "rankings.parquet")
    assert set(rankings.dropna(subset=["rank_tuned"])["optimizer"]) == set(TUNED)
    assert set(rankings["problem"]) == set(PROBLEMS)
    html = (study[0] / "results/report/study.html").read_text()
    assert "Tuned comparison" in html and "Among the tuned optimizers (Adam)" in html  # like with like
    assert "best tuned <strong>Adam</strong>" in html
    assert "The tuned runs trained on 1,148 images, the default runs on 1,348" in html  # 200 held out


def test_adding_one_trial_runs_only_it_and_what_follows(study, tmp_path):
    more = write_config(tmp_path / "more.yaml", **tiny_config(tune={**tiny_config()["tune"], "trials": TRIALS + 1}))
    counts = job_counts(snakemake(study[0], more, "-n").stdout)
    # one more trial per problem, then each problem's selection and final runs
    assert counts["trial"] == len(PROBLEMS) and counts["select"] == len(PROBLEMS)
    assert "train" not in counts and "descent" not in counts
    assert counts["tuned_train"] == len(SEEDS) * len(PROBLEMS) and counts["report"] == 1
