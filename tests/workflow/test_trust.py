"""After a finished study: what reruns (exactly what a change would alter), and a report that shows exactly
this study's runs with the settings they recorded. Dry runs work on the shared study; anything that writes
works on a copy of it."""

import shutil
import subprocess

import pandas as pd
import pytest
from conftest import tiny_config

from helpers import ROOT, job_counts, run_env, snakemake, write_config
from workflow_study import OPTIMIZERS, PROBLEMS, SEEDS, TRIALS, TUNED

pytestmark = pytest.mark.workflow


def dry_run(workdir, tmp_path, **changes) -> dict[str, int]:
    """Job counts of a dry run of the shared study with `changes` to its config ({} when nothing to do)."""
    config = write_config(tmp_path / "changed.yaml", **tiny_config(**changes))
    result = snakemake(workdir, config, "-n")
    return {} if "Nothing to be done" in result.stdout + result.stderr else job_counts(result.stdout)


@pytest.fixture
def copy(study, tmp_path):
    """A copy of the finished shared study (results, data, Snakemake's metadata) to change freely."""
    target = tmp_path / "copy"
    shutil.copytree(study[0], target, symlinks=True)
    return target


def test_a_finished_study_has_nothing_to_do(study, tmp_path):
    assert dry_run(study[0], tmp_path) == {}


@pytest.mark.parametrize("changes", [
    {"optimizers": {"SGD": {"paper": "a new citation"}}},
    {"train": {"compile": "off"}},
    {"data": {"source": "digits", "synthetic": {"train_size": 500}}},
], ids=["citation", "compile-off", "unused-data-setting"])
def test_settings_that_cannot_change_a_result_rerun_nothing(study, tmp_path, changes):
    assert dry_run(study[0], tmp_path, **changes) == {}


def test_the_thread_count_reruns_every_training_run_and_no_descent(study, tmp_path):
    """Issue 27.6: a CPU run's numbers change with its thread count, so threads are in the result spec."""
    counts = dry_run(study[0], tmp_path, train={**tiny_config()["train"], "threads": 2})
    assert counts["train"] == len(PROBLEMS) * len(OPTIMIZERS) * len(SEEDS)
    assert counts["trial"] == len(PROBLEMS) * len(TUNED) * TRIALS
    assert "descent" not in counts and "prepare_data" not in counts


def test_a_learning_rate_reruns_exactly_that_optimizers_runs_and_what_follows(study, tmp_path):
    counts = dry_run(study[0], tmp_path, optimizers={"Adam": {"class": "Adam", "kwargs": {"lr": 0.002}}})
    assert counts["train"] == len(SEEDS) * len(PROBLEMS)  # Adam's seeds only, on each problem
    assert counts["descent"] == 1  # Adam driving the point on Ackley
    assert "prepare_data" not in counts and counts["report"] == 1


def test_adding_a_problem_runs_only_its_jobs_and_what_follows(study, tmp_path):
    counts = dry_run(study[0], tmp_path, problems=PROBLEMS + ["digits-capsnet"],
                     problem_settings={**tiny_config()["problem_settings"], "digits-capsnet": {"width": 8}})
    # digits-capsnet reads the same MNIST-format digits file as digits-vae: no new data, no new split
    assert "prepare_data" not in counts and "validation_split" not in counts
    assert counts["train"] == len(OPTIMIZERS) * len(SEEDS)
    assert counts["trial"] == len(TUNED) * TRIALS and counts["tuned_train"] == len(TUNED) * len(SEEDS)
    assert counts["select"] == len(TUNED)
    assert "descent" not in counts and counts["report"] == 1


def test_studies_with_other_data_settings_keep_their_own_data_file(copy, tmp_path):
    other = write_config(tmp_path / "other.yaml", **tiny_config(data={"digits": {"test_fraction": 0.5}}))
    counts = job_counts(snakemake(copy, other, "-n").stdout)
    # both problems read digits: each gets its new file (its own format), every run reruns
    assert counts["prepare_data"] == 2 and counts["train"] == len(PROBLEMS) * len(OPTIMIZERS) * len(SEEDS)
    snakemake(copy, other, "--cores", "1", "--until", "prepare_data")
    assert len(list((copy / "resources/data").glob("cifar10-digits-*.npz"))) == 2
    assert len(list((copy / "resources/data").glob("mnist-digits-*.npz"))) == 2
    assert dry_run(copy, tmp_path) == {}  # the first study is untouched


def test_a_run_deleted_by_hand_is_retrained_and_make_report_names_it(copy, tmp_path):
    config = write_config(tmp_path / "c.yaml", **tiny_config())
    missing = copy / "results/train/digits-resnet18/Adam/seed1/metrics.csv"
    missing.unlink()
    report = subprocess.run(["make", "-C", str(ROOT), "report", f"WORKDIR={copy}", f"CONFIG={config}"],
                            env=run_env(), capture_output=True, text=True, timeout=600)
    assert report.returncode != 0
    assert "1 run(s) of this study have no results yet" in report.stdout
    assert "results/train/digits-resnet18/Adam/seed1/metrics.csv" in report.stdout
    assert "make study" in report.stdout and "MissingInputException" not in report.stdout + report.stderr
    counts = job_counts(snakemake(copy, config, "-n").stdout)
    assert counts["train"] == 1 and counts["report"] == 1


def test_the_report_shows_only_the_runs_of_this_config(copy, tmp_path):
    fewer = [o for o in OPTIMIZERS if o != "Adagrad"]
    config = write_config(tmp_path / "fewer.yaml", **tiny_config(
        train={"optimizers": fewer},
        descent={"max_epochs": 500, "groups": [tiny_config()["descent"]["groups"][0],
                                               {**tiny_config()["descent"]["groups"][1], "methods": fewer}]}))
    result = snakemake(copy, config, "--cores", "2")
    assert "rule train:" not in result.stdout + result.stderr  # nothing retrained
    html = (copy / "results/report/study.html").read_text()
    # not in the ranking, the setup table or the 3-D view (the claims' texts still name it: "not tested")
    assert "<strong>Adagrad</strong>" not in html and "<td>Adagrad</td>" not in html
    view = (copy / "results/figures/descent/ackley_3d.html").read_text()  # its own page, linked from the report
    trace = "{} \\u002f autograd (optimizers)"  # a 3-D trace's name, as plotly's JSON writes "/"
    assert trace.format("Adagrad") not in view and trace.format("SGD") in view
    assert "not tested: Adagrad not in this study" in html
    runs = pd.read_parquet(copy / "results/tables/runs.parquet")
    assert sorted(runs["optimizer"].unique()) == sorted(fewer)


def test_the_report_shows_the_recorded_settings_and_warns_when_the_config_differs(copy, tmp_path):
    changed = write_config(tmp_path / "x.yaml",
                           **tiny_config(optimizers={"SGD": {"kwargs": {"lr": 0.5, "momentum": 0}}}))
    result = subprocess.run(["make", "-C", str(ROOT), "report", f"WORKDIR={copy}", f"CONFIG={changed}"],
                            env=run_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    html = (copy / "results/report/study.html").read_text()
    runs = len(PROBLEMS) * len(OPTIMIZERS) * len(SEEDS)  # SGD's seeds on each problem differ
    assert f"Warning: {len(PROBLEMS) * len(SEEDS)} of {runs} runs were trained with other settings" in html
    assert "optimizer.kwargs.lr: 0.01 recorded, 0.5 in the config" in html
    runs = pd.read_parquet(copy / "results/tables/runs.parquet").set_index(["problem", "optimizer", "seed"])
    # what ran, not what is configured
    assert runs.loc[("digits-vae", "SGD", 0), "kwargs"] == '{"lr": 0.01, "momentum": 0.9}'
