"""The tuned comparison end to end on the shared tiny study: trials judged on validation only, a selection,
final runs tested once, the tables and the report's section; adding one trial runs only it and what follows."""

import json

import pandas as pd
import pytest

from conftest import tiny_config
from helpers import job_counts, snakemake, write_config
from workflow_study import EPOCHS, SEEDS, TRIALS, TUNED

pytestmark = pytest.mark.workflow
TUNE = "results/tune/digits-resnet18/Adam"


def test_trials_are_judged_on_validation_and_the_best_is_rerun_over_the_seeds(study):
    workdir = study[0]
    counts = job_counts(study[2].stdout + study[2].stderr)
    assert counts["trial"] == TRIALS and counts["select"] == 1 and counts["tuned_train"] == len(SEEDS)
    scores = []
    for k in range(TRIALS):
        metrics = pd.read_csv(workdir / f"{TUNE}/trial{k}/metrics.csv")
        assert metrics["test_acc"].isna().all() and metrics["val_acc"].notna().all()  # the test set decides nothing
        assert not (workdir / f"{TUNE}/trial{k}/model.pt").exists()
        scores.append(metrics["val_acc"].iloc[-1])
    selection = json.loads((workdir / f"{TUNE}/selected.json").read_text())
    assert selection["trial"] == int(pd.Series(scores).idxmax())  # final validation accuracy decides
    for seed in SEEDS:
        final = pd.read_csv(workdir / f"results/tuned/train/digits-resnet18/Adam/seed{seed}/metrics.csv")
        assert final["test_acc"].notna().tolist() == [False] * (EPOCHS - 1) + [True]  # tested once, at the end
        info = json.loads((workdir / f"results/tuned/train/digits-resnet18/Adam/seed{seed}/run.json").read_text())
        assert info["spec"]["optimizer"]["kwargs"]["lr"] == selection["setting"]["lr"]
        assert info["spec"]["selected_trial"] == selection["trial"]
        assert info["train_images"] == 1348 - 200  # the validation images are held out of training


def test_tune_tables_and_the_report_section(study):
    tables = study[0] / "results/tables"
    trials = pd.read_parquet(tables / "tune_trials.parquet")
    assert len(trials) == TRIALS and trials["selected"].sum() == 1
    curves = pd.read_parquet(tables / "budget_curves.parquet")
    assert curves["k"].tolist() == list(range(1, TRIALS + 1))
    assert curves["expected_best"].iloc[-1] == pytest.approx(trials["score"].max())
    rankings = pd.read_parquet(tables / "rankings.parquet")
    assert set(rankings.dropna(subset=["rank_tuned"])["optimizer"]) == set(TUNED)
    html = (study[0] / "results/report/study.html").read_text()
    assert "Tuned comparison" in html and "Best after tuning: <strong>Adam</strong>" in html


def test_adding_one_trial_runs_only_it_and_what_follows(study, tmp_path):
    more = write_config(tmp_path / "more.yaml", **tiny_config(tune={**tiny_config()["tune"], "trials": TRIALS + 1}))
    counts = job_counts(snakemake(study[0], more, "-n").stdout)
    assert counts["trial"] == 1 and counts["select"] == 1 and "train" not in counts and "descent" not in counts
    assert counts["tuned_train"] == len(SEEDS) and counts["report"] == 1
