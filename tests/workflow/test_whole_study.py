"""The whole study end to end on a tiny config that learns: every stage really runs, the tables hold what a
working study must show, the report states the answer first and holds the numbers, and the report target
rebuilds it without retraining."""

import base64
import json
import re
import subprocess

import pandas as pd
import pytest

from optimbench import labels

from helpers import ROOT, job_counts, run_env, snakemake
from workflow_study import (
    DESCENT_JOBS,
    DESCENT_RUNS,
    EPOCHS,
    OPTIMIZERS,
    PROBLEM,
    PROBLEMS,
    SEEDS,
    TARGET,
    VAE,
    VAE_TARGET,
)

pytestmark = pytest.mark.workflow


def test_every_job_ran(study):
    workdir, _, result = study
    counts = job_counts(result.stdout + result.stderr)
    assert counts["train"] == len(PROBLEMS) * len(OPTIMIZERS) * len(SEEDS) and counts["descent"] == DESCENT_JOBS
    assert counts["plan"] == 1 and counts["report"] == 1 and counts["prepare_data"] == len(PROBLEMS)
    for problem in PROBLEMS:
        for optimizer in OPTIMIZERS:
            for seed in SEEDS:
                run = workdir / f"results/train/{problem}/{optimizer}/seed{seed}"
                metrics = pd.read_csv(run / "metrics.csv")
                assert metrics["epoch"].tolist() == list(range(1, EPOCHS + 1))
                assert (run / "model.pt").stat().st_size > 0
                info = json.loads((run / "run.json").read_text())  # the job's own time: the cost table's
                assert info["job_seconds"] > info["startup_seconds"] + metrics["epoch_seconds"].sum()
                assert "step" in (workdir / f"results/logs/train/{problem}/{optimizer}/seed{seed}.log").read_text()


def test_the_study_learns_and_reaches_its_target(study):
    tables = study[0] / "results/tables"
    both = pd.read_parquet(tables / "optimizer_summary.parquet")
    summary = both[both["problem"] == PROBLEM].set_index("optimizer")
    assert sorted(summary.index) == sorted(OPTIMIZERS) and (summary["seeds"] == len(SEEDS)).all()
    # ten classes: chance is 0.1; within two epochs Adam (≈ 0.55) and Adagrad (≈ 0.44) learn digits at width 8
    assert summary.loc["Adam", "final_test_acc"] > 0.45 and summary.loc["Adagrad", "final_test_acc"] > 0.3
    assert summary.loc["Adam", "runs_reaching_target"] == len(SEEDS)
    assert 1 <= summary.loc["Adam", "epochs_to_target"] <= EPOCHS
    assert summary["rank"].notna().all() and summary["rank"].min() == 1
    best = summary["final_test_acc"].idxmax()
    assert summary.loc[best, "rank"] == 1
    for column in ("final_test_acc_ci_low", "final_test_acc_ci_high"):
        assert summary[column].between(0, 1).all()
    # the VAE: lower negative ELBO is better, so rank 1 holds the lowest mean
    vae = both[both["problem"] == VAE].set_index("optimizer")
    assert (vae["metric"] == "test_neg_elbo").all() and not vae["higher_is_better"].any()
    assert vae.loc[vae["final"].idxmin(), "rank"] == 1 and vae.loc[vae["final"].idxmax(), "rank"] == len(OPTIMIZERS)
    assert (vae["final_ci_low"] >= 0).all() and vae.loc["Adam", "final"] < VAE_TARGET
    assert vae.loc["Adam", "runs_reaching_target"] == len(SEEDS)
    claims = pd.read_parquet(tables / "article_claims.parquet")
    assert set(claims["problem"]) == {PROBLEM}  # the article's claims are about its kind of problem only
    worst = claims[claims["claim"].str.startswith("Adagrad and Adadelta end worst")].iloc[0]
    assert worst["verdict"] in ("holds", "contradicted", "inconclusive")  # evaluated, not "not tested"
    assert worst["compared"] == "SGD, Adam, Adadelta, Adagrad"


def test_tables_have_the_expected_rows(study):
    tables = study[0] / "results/tables"
    per_problem = len(OPTIMIZERS) * len(SEEDS)
    runs = len(PROBLEMS) * per_problem
    assert len(pd.read_parquet(tables / "seed_summary.parquet")) == runs
    long = pd.read_csv(tables / "epochs_long.csv")
    # loss, acc (train, test), lr, epoch seconds, samples/s; the VAE: neg_elbo, recon, kl instead of loss, acc
    assert (long["problem"] == PROBLEM).sum() == per_problem * EPOCHS * 7
    assert (long["problem"] == VAE).sum() == per_problem * EPOCHS * 9
    profile = pd.read_parquet(tables / "performance_profile.parquet")
    assert set(profile["optimizer"]) == set(OPTIMIZERS) and profile["fraction"].between(0, 1).all()
    ranks = pd.read_parquet(tables / "rank_summary.parquet")
    assert (ranks["problems"] == len(PROBLEMS)).all()
    recorded = pd.read_parquet(tables / "runs.parquet")
    assert len(recorded) == runs and recorded["matches_config"].all()
    assert (recorded["train_images"] > 1000).all() and (recorded["test_images"] > 300).all()
    cost = pd.read_csv(tables / "cost.csv").set_index("optimizer")
    assert cost.index.tolist() == OPTIMIZERS * len(PROBLEMS) + ["all"] and cost.loc["all", "runs"] == runs
    assert cost.loc["all", "epochs"] == runs * EPOCHS and cost.loc["all", "unit"] == "CPU core"
    assert cost.loc["all", "job_seconds"] > cost.loc["all", "train_seconds"] > 0
    assert 0 < cost.loc["all", "startup_seconds"] < cost.loc["all", "job_seconds"]
    assert cost.loc["all", "device_seconds"] == pytest.approx(cost.drop("all")["device_seconds"].sum())
    reproduction = pd.read_csv(tables / "descent_reproduction.csv")
    assert reproduction["method"].tolist() == ["article-momentum-0.1", "article-vanilla"]
    vanilla = reproduction.set_index("method").loc["article-vanilla"]
    assert vanilla["epochs_central"] == 1 and vanilla["epochs_as-printed"] > 50


def test_every_descent_run_has_its_own_figure(study):
    figures = sorted((study[0] / "results/figures/descent/runs").rglob("*.png"))
    assert len(figures) == DESCENT_RUNS  # names holding dots no longer overwrite each other
    assert study[0] / "results/figures/descent/runs/article/ackley/article-momentum-0.1/as-printed.png" in figures


def embedded_pngs(html: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'<img[^>]*src="data:image/png;base64,([^"]+)"', html)]


def test_report_opens_with_the_answer_and_holds_the_numbers(study):
    html = (study[0] / "results/report/study.html").read_text()
    title = re.search(r"<title>(.*?)</title>", html).group(1)
    # report.title is null: the default title follows the study's problems (not a temp name)
    assert title == ("optimbench: 4 optimizers on digits-resnet18, digits-vae (digits (CIFAR-10 format); digits "
                     "(MNIST format)) and the Ackley function")
    # the headline, every profile and the ranks; per problem four training and three tuning figures; Ackley
    pngs = embedded_pngs(html)
    assert len(pngs) == 3 + len(PROBLEMS) * (4 + 3) + 2
    assert all(p.startswith(b"\x89PNG\r\n\x1a\n") and len(p) > 5000 for p in pngs)
    # the interactive view is its own page (plotly.js inlined there), linked: the report stays small
    assert "Plotly" not in html and 'href="../figures/descent/ackley_3d.html"' in html
    assert "<script src=\"http" not in html  # self-contained: nothing fetched from the network
    body = html.split("<body")[1]
    answer, setup = body.index("The answer"), body.index('id="per-problem"')
    summary = pd.read_parquet(study[0] / "results/tables/optimizer_summary.parquet")
    first_screen = body[answer:setup]
    # across problems first: the profile scores and ranks, then each problem's best in its own metric
    assert "Performance-profile score" in first_screen and "Mean rank over the 2 problems" in first_screen
    for problem, words in ((PROBLEM, "final test accuracy, higher is better"),
                           (VAE, "final test negative ELBO, lower is better")):
        # the leader by mean (the table's rank 1), printed with labels.number's significant digits, either as the
        # one first (the procedure orders it above every other) or as the best mean of those who can each be first
        best = summary[summary["problem"] == problem].sort_values(["rank", "optimizer"]).iloc[0]
        assert f"({words}; mean over completed seeds, 95% interval): " in first_screen
        value = re.escape(f"{best.optimizer} {labels.number(best.final)} [")
        assert re.search(rf"(first: <strong>{best.optimizer}</strong> \(|best mean ){value}", first_screen), \
            first_screen
    assert "claims here" in first_screen and "CPU core-hours" in html and "Gradient descent on 2-D" in html
    assert "CIFAR study" not in html
    for row in summary.itertuples():
        assert row.optimizer in html and labels.number(row.final) in html
    reproduction = pd.read_csv(study[0] / "results/tables/descent_reproduction.csv").set_index("method")
    epochs = reproduction.loc["article-vanilla", "epochs_as-printed"]
    assert f"{epochs} epochs with the as-printed gradient" in html
    assert "def " not in body[:2000]  # code is hidden
    cost = pd.read_csv(study[0] / "results/tables/cost.csv").set_index("optimizer")
    assert f"{cost.loc['all', 'device_seconds'] / 3600:.3f} CPU core-hours" in html


def test_report_target_rebuilds_without_retraining(study):
    workdir, config, _ = study
    train_files = sorted((workdir / "results/train").rglob("*"))
    before = {p: p.stat().st_mtime_ns for p in train_files}
    (workdir / "results/report/study.html").unlink()
    result = subprocess.run(["make", "-C", str(ROOT), "report", f"WORKDIR={workdir}", f"CONFIG={config}"],
                            env=run_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (workdir / "results/report/study.html").stat().st_size > 100_000
    assert f"Report: {workdir}/results/report/study.html" in result.stdout
    assert {p: p.stat().st_mtime_ns for p in train_files} == before
    assert "rule train:" not in result.stdout + result.stderr and "rule descent:" not in result.stdout + result.stderr


def test_snakemakes_own_report(study):
    workdir, config, _ = study
    snakemake(workdir, config, "--report", "smk-report.html")
    assert (workdir / "smk-report.html").stat().st_size > 500_000


def test_target_setting_reaches_the_tables(study):
    seeds = pd.read_parquet(study[0] / "results/tables/seed_summary.parquet")
    for row in seeds.itertuples():
        metrics = pd.read_csv(study[0] / f"results/train/{row.problem}/{row.optimizer}/seed{row.seed}/metrics.csv")
        # accuracy reaches its target from below, the negative ELBO from above
        reached = metrics.index[metrics["test_acc"] >= TARGET if row.problem == PROBLEM
                                else metrics["test_neg_elbo"] <= VAE_TARGET]
        assert row.reached_target == (len(reached) > 0)
        if len(reached):
            assert row.epochs_to_target == metrics.loc[reached[0], "epoch"]
