"""The whole study end to end on a tiny config: every stage really runs, the report holds the numbers,
and the report target rebuilds it without retraining."""

import base64
import re
import subprocess

import pandas as pd
import pytest

from helpers import ROOT, job_counts, run_env, snakemake
from workflow_study import OPTIMIZERS

pytestmark = pytest.mark.workflow


def test_every_job_ran(study):
    workdir, _, result = study
    counts = job_counts(result.stdout + result.stderr)
    assert counts["train"] == 4 and counts["descent"] == 4 and counts["report"] == 1
    for optimizer in OPTIMIZERS:
        for seed in (0, 1):
            run = workdir / f"results/train/synthetic/resnet18_cifar/{optimizer}/seed{seed}"
            metrics = pd.read_csv(run / "metrics.csv")
            assert metrics["epoch"].tolist() == [1, 2]
            assert (run / "model.pt").stat().st_size > 0 and (run / "run.json").exists()
            assert (workdir / f"results/benchmarks/train/synthetic/resnet18_cifar/{optimizer}/seed{seed}.tsv").exists()
            assert "step" in (workdir / f"results/logs/train/synthetic/resnet18_cifar/{optimizer}/seed{seed}.log").read_text()


def test_tables_have_the_expected_rows(study):
    tables = study[0] / "results/tables"
    assert len(pd.read_parquet(tables / "optimizer_summary.parquet")) == 2
    assert len(pd.read_parquet(tables / "seed_summary.parquet")) == 4
    assert len(pd.read_csv(tables / "epochs_long.csv")) == 4 * 2 * 7
    cost = pd.read_csv(tables / "cost.csv").set_index("optimizer")
    assert list(cost.index) == OPTIMIZERS + ["all"] and cost.loc["all", "runs"] == 4 and cost.loc["all", "epochs"] == 8
    assert cost.loc["all", "unit"] == "CPU core" and cost.loc["all", "job_seconds"] > cost.loc["all", "train_seconds"] > 0
    assert cost.loc["all", "device_seconds"] == pytest.approx(cost.loc[OPTIMIZERS, "device_seconds"].sum())
    reproduction = pd.read_csv(tables / "descent_reproduction.csv")
    assert reproduction["method"].tolist() == ["article-vanilla"]
    assert reproduction["epochs_central"].item() == 1 and reproduction["epochs_as-printed"].item() > 50


def embedded_pngs(html: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'<img[^>]*src="data:image/png;base64,([^"]+)"', html)]


def test_report_embeds_figures_names_and_numbers(study):
    html = (study[0] / "results/report/study.html").read_text()
    pngs = embedded_pngs(html)  # Ackley views, Ackley runs, the four CIFAR figures
    assert len(pngs) == 6 and all(p.startswith(b"\x89PNG\r\n\x1a\n") and len(p) > 5000 for p in pngs)
    assert 'id="ackley-3d"' in html and "Plotly.newPlot" in html  # the interactive view, plotly.js inlined
    assert "<script src=\"http" not in html  # self-contained: nothing fetched from the network
    summary = pd.read_parquet(study[0] / "results/tables/optimizer_summary.parquet")
    for row in summary.itertuples():
        assert row.optimizer in html
        assert f"{row.final_test_acc:.4f}" in html
    reproduction = pd.read_csv(study[0] / "results/tables/descent_reproduction.csv").iloc[0]
    assert f"{reproduction['epochs_as-printed']} epochs with the as-printed gradient" in html
    assert "def " not in html.split("<body")[1][:2000]  # code is hidden
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
