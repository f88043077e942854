"""The DAG's shape, config errors before any job, and the linter."""

import json
import re
import subprocess
from pathlib import Path

import pytest

from helpers import ROOT, SNAKEMAKE, job_counts, run_env, snakemake, write_config

pytestmark = pytest.mark.workflow
DESCENT = {"methods": {"article-vanilla": {"update": "vanilla", "lr": 1e-5},
                       "article-momentum-0.1": {"update": "momentum", "momentum": 0.1, "lr": 1e-5}},
           "groups": [{"name": "article", "functions": ["ackley"],
                       "methods": ["article-vanilla", "article-momentum-0.1"], "gradients": ["as-printed", "central"]},
                      {"name": "optimizers", "functions": ["ackley", "rosenbrock", "beale"],
                       "methods": ["SGD", "Adam", "Adagrad"], "gradients": ["autograd"]}]}


def test_one_training_job_per_optimizer_and_seed_and_one_descent_job_per_group_and_function(tmp_path):
    # A descent job runs every method x gradient of its group on one function: a run takes well under a second
    # and a process's start-up with torch about two (issue 31), so 13 runs here are 4 jobs.
    config = write_config(tmp_path / "c.yaml", data={"source": "synthetic"}, descent=DESCENT,
                          train={"optimizers": ["SGD", "Adam", "Adagrad"], "seeds": [0, 1]})
    result = snakemake(tmp_path, config, "-n")
    assert job_counts(result.stdout) == {
        "plan": 1, "prepare_data": 1, "train": 6, "descent": 1 + 3, "aggregate_train": 1,
        "aggregate_descent": 1, "figures_train": 1, "figures_descent": 1, "report": 1, "all": 1, "total": 18}
    for optimizer in ("SGD", "Adam", "Adagrad"):
        for seed in (0, 1):
            assert f"results/train/cifar10-resnet18/{optimizer}/seed{seed}/metrics.csv" in result.stdout
    for group, function in [("article", "ackley")] + [("optimizers", f) for f in ("ackley", "rosenbrock", "beale")]:
        assert f"results/descent/{group}/{function}/trajectory.csv" in result.stdout
    assert "results/figures/descent/runs/article/ackley/article-momentum-0.1/as-printed.png" in result.stdout


def test_the_demo_runs_all_seven_article_optimizers_over_three_seeds(tmp_path):
    result = snakemake(tmp_path, ROOT / "config/presets/demo.yaml", "-n")
    counts = job_counts(result.stdout)
    assert counts["train"] == 2 * 7 * 3 and counts["report"] == 1 and counts["prepare_data"] == 2
    assert counts["trial"] == 2 * 2 * 4 and counts["select"] == 2 * 2 and counts["tuned_train"] == 2 * 2 * 3
    for problem in ("digits-resnet18", "digits-vae"):
        for optimizer in ("SGD", "Adam", "Adadelta", "Adagrad", "AdamW", "Adamax", "ASGD"):
            assert f"results/demo/train/{problem}/{optimizer}/seed2/metrics.csv" in result.stdout


def test_names_that_cannot_be_folders_stop_the_run_before_any_job(tmp_path):
    config = write_config(tmp_path / "c.yaml", optimizers={"SGD fast": {"class": "SGD"}},
                          train={"optimizers": ["SGD fast"]})
    result = snakemake(tmp_path, config, "-n", check=False)
    assert result.returncode != 0
    assert "optimizers.SGD fast = 'SGD fast'" in result.stdout + result.stderr
    assert "no spaces or slashes" in result.stdout + result.stderr


def test_default_config_is_the_article_study(tmp_path):
    result = snakemake(tmp_path, write_config(tmp_path / "c.yaml", results_dir="results"), "-n")
    counts = job_counts(result.stdout)
    # descent jobs: article and corrected on Ackley, optimizers on each of 5 functions
    assert counts["train"] == 7 and counts["descent"] == 1 + 1 + 5
    assert "results/train/cifar10-resnet18/ASGD/seed0/metrics.csv" in result.stdout


def test_a_bad_config_stops_before_any_job(tmp_path):
    config = write_config(tmp_path / "c.yaml", train={"optimizers": ["SGD", "Adamm"], "epochs": 2})
    result = snakemake(tmp_path, config, "--cores", "1", check=False)
    assert result.returncode != 0
    assert "unknown optimizer 'Adamm' in train.optimizers" in result.stderr + result.stdout
    assert not (tmp_path / "results").exists() and not (tmp_path / "resources").exists()


def test_lint_is_clean():
    result = subprocess.run([SNAKEMAKE, "--lint"], cwd=ROOT, env=run_env(), capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_files_are_formatted():
    snakefmt = str(Path(SNAKEMAKE).with_name("snakefmt"))  # its settings: pyproject.toml [tool.snakefmt]
    result = subprocess.run([snakefmt, "--check", "Snakefile", "workflow/rules"], cwd=ROOT, env=run_env(),
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def job_blocks(output: str) -> list[dict]:
    """Each job of a dry run's output (`-n`): {"rule", "wildcards": {...}, "threads", "resources": {...}, "spec"}
    (spec: the --spec of its shell command, None without one)."""
    jobs = []
    for block in re.split(r"\n(?=\[[^\]]*\]\n(?:local)?rule )", output):
        rule = re.search(r"^(?:local)?rule (\w+):", block, flags=re.M)
        if not rule:
            continue
        fields = dict(re.findall(r"^    (\w+): ([^\n]*)$", block, flags=re.M))
        pairs = lambda text: dict(item.split("=", 1) for item in text.split(", ") if "=" in item)  # noqa: E731
        spec = re.search(r"--spec '([^']*)'", block)
        jobs.append({"rule": rule.group(1), "wildcards": pairs(fields.get("wildcards", "")),
                     "threads": int(fields.get("threads", 1)), "resources": pairs(fields.get("resources", "")),
                     "spec": json.loads(spec.group(1)) if spec else None})
    return jobs


def test_each_training_job_asks_slurm_for_its_own_runtime_memory_and_threads(tmp_path):
    """Issue 27.4 / 29.2: runtime = that job's epochs (per problem, per trial) × its minutes per epoch + 5, memory
    per problem (problem_settings, else train.mem_mb), never replaced by the SLURM profile."""
    config = write_config(
        tmp_path / "c.yaml", problems=["digits-resnet18", "digits-vae"], data={"source": "digits"},
        problem_settings={"digits-vae": {"epochs": 30, "mem_mb": 3456, "minutes_per_epoch": 0.5, "threads": 2}},
        train={"epochs": 1, "mem_mb": 2345, "minutes_per_epoch": 2, "optimizers": ["SGD"], "seeds": [0],
               "threads": 1, "gpus": 0},
        # two trials: a grid over lr needs both ends of its range (issue 27.9)
        tune={"enabled": True, "optimizers": ["SGD"], "trials": 2, "epochs": 4, "validation_size": 200},
        descent={"groups": []})
    result = snakemake(tmp_path, config, "-n", "--profile", str(ROOT / "profiles" / "slurm"), "--cores", "4")
    expected = {  # rule, problem -> (runtime, mem_mb, threads)
        ("train", "digits-resnet18"): (1 * 2 + 5, 2345, 1), ("train", "digits-vae"): (15 + 5, 3456, 2),
        ("trial", "digits-resnet18"): (4 * 2 + 5, 2345, 1), ("trial", "digits-vae"): (2 + 5, 3456, 2),
        ("tuned_train", "digits-resnet18"): (7, 2345, 1), ("tuned_train", "digits-vae"): (20, 3456, 2)}
    jobs = [job for job in job_blocks(result.stdout) if job["rule"] in ("train", "trial", "tuned_train")]
    seen = {(job["rule"], job["wildcards"]["problem"]):
            (int(job["resources"]["runtime"]), int(job["resources"]["mem_mb"]), job["threads"]) for job in jobs}
    assert seen == expected, result.stdout[-3000:]
    assert len(jobs) == 8 and all(job["spec"]["threads"] == job["threads"] for job in jobs)  # the trainer's too
    assert "--mem-mb 3456" in result.stdout and "--mem-mb 2345" in result.stdout  # recorded in run.json
    # Issue 27.7: the report's outputs are `update`: Snakemake never deletes the previous report (restored on failure)
    assert re.search(r"rule report:.*?\n    output: \S+/study\.ipynb \(update\), \S+/study\.html \(update\)\n",
                     result.stdout, flags=re.S)
